"""What the benchmarks share: detection settings from ``--detection.name value`` pairs, the
arguments of a run over simulated scenarios, and the Beijing replay with the scoreboard's injected
attacks."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from monitor.config import DetectionSettings
from monitor.detectors.device import DeviceEvents, DeviceMonitor
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


def fleet_args(ap: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str], list[int], DetectionSettings]:
    """Adds ``--scenarios`` and ``--seeds`` to a benchmark's parser and parses the command line, the
    rest of which are ``--detection`` options: (arguments, scenario files, seeds, settings)."""
    ap.add_argument("--scenarios", required=True, help="comma-separated scenario files")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    args, rest = ap.parse_known_args()
    return args, args.scenarios.split(","), [int(s) for s in args.seeds.split(",")], detection_settings(rest)


def beijing(seed: int = BEIJING_SEED) -> tuple[EvalData, EvalData]:
    """The Beijing replay, clean and with the scoreboard's attacks injected (``seed``: the injection's;
    ``poison-monitor evaluate`` takes the first of its ``--seeds``)."""
    clean = to_eval_data(default_path())
    return clean, inject(clean, BEIJING_ATTACKS, seed=seed)


def label_type(label: dict) -> str:
    """A ground-truth label's type, ``camouflage-lead`` for a camouflage set's lead (the member that
    reports the pulled consensus, ``role`` in its parameters) to tell it from the members that shift."""
    lead = (label.get("params") or {}).get("role") == "camouflage"
    return label["type"] + ("-lead" if lead else "")


@contextmanager
def watching_devices(record: Callable[[DeviceMonitor, object, object, DeviceEvents], None]) -> Iterator[None]:
    """Within the block, ``record(monitor, devices, window, events)`` is called after every
    ``DeviceMonitor.update`` (for the benchmarks that trace devices window by window; nothing else changes)."""
    update = DeviceMonitor.update

    def watched(self, devices, window, value, *rest, **kw):
        ev = update(self, devices, window, value, *rest, **kw)
        record(self, devices, window, ev)
        return ev

    DeviceMonitor.update = watched
    try:
        yield
    finally:
        DeviceMonitor.update = update
