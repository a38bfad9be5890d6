"""Scenario files (YAML, TOML or JSON) and directories of them: the package's only reading I/O.

A scenario file is one `Scenario` document.  Its ``meta`` may name the
``suite`` it belongs to (``tuning``: used to choose thresholds; ``reporting``:
scores are reported on it) and the ``seeds`` it runs with.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulators.scenario import Scenario

SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML, TOML or JSON file (by suffix)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        doc = yaml.safe_load(text) or {}
    elif suffix == ".toml":
        doc = tomllib.loads(text)
    elif suffix == ".json":
        doc = json.loads(text)
    else:
        raise ValueError(f"{path}: unknown scenario file type (use {', '.join(SUFFIXES)})")
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a scenario file holds one mapping")
    return doc


def load_scenario(path: str | os.PathLike[str], **overrides: Any) -> Scenario:
    """The `Scenario` in ``path``, with fields overridden (validated)."""
    return Scenario.model_validate({**read_document(path), **overrides})


def scenario_paths(directory: str | os.PathLike[str]) -> list[Path]:
    """The scenario files in ``directory``, sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


def load_suite(directory: str | os.PathLike[str], seeds: Sequence[int] | None = None,
               **overrides: Any) -> list[Scenario]:
    """Every scenario file of ``directory`` once per seed (file-major), ``seed`` set.

    Seeds: ``seeds`` if given, else the file's ``meta["seeds"]``, else its ``seed``.
    """
    out = []
    for path in scenario_paths(directory):
        base = load_scenario(path, **overrides)
        for seed in (seeds if seeds is not None else base.meta.get("seeds") or [base.seed]):
            out.append(base.model_copy(update={"seed": int(seed)}))
    return out
