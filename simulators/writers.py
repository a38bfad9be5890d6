"""The only I/O of the package: write readings and labels to files."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any


def write_jsonl(path: str | os.PathLike[str], readings: Iterable[Mapping[str, Any]]) -> int:
    """Write one JSON reading per line; returns the number written."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for r in readings:
            fh.write(json.dumps(r, allow_nan=False, separators=(",", ":")))
            fh.write("\n")
            n += 1
    return n


def write_labels(path: str | os.PathLike[str], labels: Iterable[Mapping[str, Any]]) -> int:
    """Write the ground-truth records as one JSON array; returns the number written."""
    records = list(labels)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(records, fh, indent=1, allow_nan=False)
        fh.write("\n")
    return len(records)
