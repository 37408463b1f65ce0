"""Keep the README's benchmark tables true to the latest run: replace the text between markers."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def update_readme(marker: str, table: str, meta: str) -> None:
    """Replace everything between <!-- {marker}:start --> and <!-- {marker}:end --> with meta and table."""
    text = README.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise SystemExit(f"{README} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{meta}\n\n{table}\n{end}{tail}")
