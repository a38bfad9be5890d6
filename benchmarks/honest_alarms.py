"""How long the monitor's alarms on honest devices last, per scenario file and seed.

A device in alarm does not learn its calibration offset (never learn from what
was flagged), so an honest device whose calibration drifts while it is in
alarm can stay there. For every run this prints how many alarms honest
devices raised, the median number of windows the resolved ones lasted, and
how many never resolved (with the windows left in the run after each began).

    python benchmarks/honest_alarms.py --scenarios scenarios/tuning/honest.yaml,scenarios/tuning/poisoning.yaml --seeds 0,1
"""

from __future__ import annotations

import argparse

import numpy as np

from monitor.config import DetectionSettings
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.scoring import truth_from_labels
from monitor.evaluation.suite import simulated


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", required=True, help="comma-separated scenario files")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    args = ap.parse_args()
    for data, _ in simulated(args.scenarios.split(","), [int(s) for s in args.seeds.split(",")]):
        alerts, *_ = run_monitor(data, DetectionSettings())
        t0, W = float(np.nanmin(data.ts)), data.interval
        end = (float(np.nanmax(data.ts)) - t0) / W
        truth = truth_from_labels(data.labels, t0, float(np.nanmax(data.ts)) + W)
        liars = {i.device for i in truth.attacks} | {i.device for i in truth.faults}
        open_: dict[str, float] = {}
        lasted = []
        for a in alerts:
            if a.kind != "device" or a.devices[0] in liars:
                continue
            if a.state == "firing":
                open_[a.alert_id] = a.ts
            elif a.alert_id in open_:
                lasted.append((a.ts - open_.pop(a.alert_id)) / W)
        left = sorted((round(end - (ts - t0) / W) for ts in open_.values()), reverse=True)
        print(f"{data.name} seed {data.meta['seed']}: {len(lasted) + len(left)} honest alarms, "
              f"resolved after a median {np.median(lasted) if lasted else float('nan'):.0f} windows, "
              f"{len(left)} never resolved (windows left after they began: {left})")


if __name__ == "__main__":
    main()
