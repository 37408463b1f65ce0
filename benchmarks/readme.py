"""Keep the README's benchmark tables true to the latest run: replace the text between markers (the library's
``ember.benchmarking.write_readme_section``, under the name the scripts import)."""

from __future__ import annotations

from ember.benchmarking.results import README  # noqa: F401
from ember.benchmarking.results import write_readme_section as update_readme  # noqa: F401
