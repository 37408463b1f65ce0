"""JSON that stays valid, and JSON-lines logs that survive a crash.

JSON has no NaN or infinity; Python's ``json`` writes them anyway (``NaN``), and strict readers
(``jq``, JavaScript, most other languages) then refuse the whole line. ember writes non-finite
numbers as ``null``. A log appended to line by line can end in a partial line when the process is
killed mid-write: readers skip that last line with a warning, but refuse damage anywhere else.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path


def json_safe(value):
    """``value`` with every NaN or infinity replaced by None, recursively through dicts, lists and tuples."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value) -> str:
    """Valid JSON of ``value``: non-finite numbers as null."""
    return json.dumps(json_safe(value), allow_nan=False)


def read_jsonl(path: str | os.PathLike, error=ValueError) -> list[dict]:
    """The records of a JSON-lines file. A partial last line (a crash mid-write) is dropped with a warning;
    a bad line elsewhere raises ``error`` naming the file and the line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        except ValueError as exc:
            if number == len(lines):
                warnings.warn(f"{path}: ignoring its last line, which is incomplete (a crash mid-write?): "
                              f"{line[:60]!r}", RuntimeWarning, stacklevel=2)
                break
            raise error(f"{path}, line {number}: not a JSON object ({exc})") from None
        records.append(record)
    return records
