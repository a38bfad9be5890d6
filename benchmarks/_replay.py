"""What the benchmarks share: detection settings from ``--detection.name value`` pairs, and the
Beijing replay with the scoreboard's injected attacks."""

from __future__ import annotations

from monitor.config import DetectionSettings
from monitor.evaluation.beijing import default_path, to_eval_data
from monitor.evaluation.data import EvalData
from monitor.evaluation.inject import inject

BEIJING_ATTACKS, BEIJING_SEED = "scenarios/beijing-attacks.yaml", 1001


def detection_options(args: list[str]) -> dict[str, str]:
    """``["--detection.collusion-threshold", "10"]`` -> ``{"collusion_threshold": "10"}``."""
    if len(args) % 2:
        raise SystemExit(f"options come in pairs (--detection.name value): {args}")
    return {args[i].removeprefix("--detection.").replace("-", "_"): args[i + 1] for i in range(0, len(args), 2)}


def detection_settings(args: list[str]) -> DetectionSettings:
    return DetectionSettings(**detection_options(args))


def beijing() -> tuple[EvalData, EvalData]:
    """The Beijing replay, clean and with the scoreboard's attacks injected."""
    clean = to_eval_data(default_path())
    return clean, inject(clean, BEIJING_ATTACKS, seed=BEIJING_SEED)
