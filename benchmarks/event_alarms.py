"""False alarms on honest devices with the devices of benign correlated events counted in, as bar 3 asks.

    python benchmarks/event_alarms.py --scenarios scenarios/reporting/benign-events.yaml,scenarios/reporting/honest.yaml --seeds 1001,1002

The scoreboard reports alarms on honest devices per honest device-day and
alarms on devices inside a benign correlated event (sun, door) per event
device-day apart. Bar 3 asks for at most one false alarm per device-week on
honest devices, benign correlated events included; this prints, per scenario
and seed and then summed, the alarm counts and device-days of both and the
rate over both together. ``--detection.x value`` options go to the detection
settings.
"""

from __future__ import annotations

import argparse

from _replay import fleet_args
from monitor.evaluation.runner import evaluate
from monitor.evaluation.suite import simulated

KEYS = ("fa_honest", "honest_days", "fa_event", "event_days")


def _line(name: str, x: dict[str, float]) -> str:
    days = x["honest_days"] + x["event_days"]
    both = (x["fa_honest"] + x["fa_event"]) / days if days else float("nan")
    return (f"{name}: honest {x['fa_honest']:.0f} alarms over {x['honest_days']:.1f} device-days, in benign events "
            f"{x['fa_event']:.0f} over {x['event_days']:.1f}; together {both:.3f} per device-day "
            f"({7 * both:.2f} a device-week; bar 3: at most 1)")


def main() -> None:
    _, scenarios, seeds, settings = fleet_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    total = dict.fromkeys(KEYS, 0.0)
    for data, clean in simulated(scenarios, seeds):
        raw = evaluate(data, settings, clean=clean, device_baselines={}, consensus_baselines={})[
            "detectors"]["poison-monitor"]["raw"]
        print(_line(f"{data.name} seed {data.meta.get('seed')}", raw))
        for k in KEYS:
            total[k] += raw[k]
    print(_line("all", total))


if __name__ == "__main__":
    main()
