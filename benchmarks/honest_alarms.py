"""How long the monitor's alarms on honest devices last, per scenario file and seed.

A device in alarm does not learn its calibration offset (never learn from what
was flagged), so an honest device whose calibration drifts while it is in
alarm can stay there. For every run this prints how many alarms honest
devices raised, the median number of windows the resolved ones lasted, and
how many never resolved (with the windows left in the run after each began),
and for those the device's natural calibration drift (the simulator's honest
drift, in its own sigmas per window: the ramp attacks bar 4 asks to catch
drift 0.001 sigma per window).

    python benchmarks/honest_alarms.py --scenarios scenarios/tuning/honest.yaml,scenarios/tuning/poisoning.yaml --seeds 0,1
"""

from __future__ import annotations

import argparse

import numpy as np

from monitor.config import DetectionSettings
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.scoring import truth_from_labels
from monitor.evaluation.suite import load, scenario_files
from simulators import FleetSimulator, to_eval_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", required=True, help="comma-separated scenario files")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    args = ap.parse_args()
    for spec in scenario_files(args.scenarios.split(",")):
        for seed in [int(s) for s in args.seeds.split(",")]:
            report(spec, seed)


def report(spec: str, seed: int) -> None:
    scenario = load(spec)
    sim = FleetSimulator(scenario, seed=seed)
    data = to_eval_data(sim)
    per_window = sim.drift_rates / sim.sigmas * data.interval / 86400.0  # sigma per window
    drift = dict(zip(sim.device_ids, per_window))
    alerts, *_ = run_monitor(data, DetectionSettings())
    t0, W = float(np.nanmin(data.ts)), data.interval
    end = (float(np.nanmax(data.ts)) - t0) / W
    truth = truth_from_labels(data.labels, t0, float(np.nanmax(data.ts)) + W)
    liars = {i.device for i in truth.attacks} | {i.device for i in truth.faults}
    open_: dict[str, tuple[float, str]] = {}
    lasted = []
    for a in alerts:
        if a.kind != "device" or a.devices[0] in liars:
            continue
        if a.state == "firing":
            open_[a.alert_id] = (a.ts, a.devices[0])
        elif a.alert_id in open_:
            lasted.append((a.ts - open_.pop(a.alert_id)[0]) / W)
    left = sorted(((round(end - (ts - t0) / W), d) for ts, d in open_.values()), reverse=True)
    print(f"{scenario.name} seed {seed}: {len(lasted) + len(left)} honest alarms, "
          f"resolved after a median {np.median(lasted) if lasted else float('nan'):.0f} windows, "
          f"{len(left)} never resolved (windows left after they began: {[w for w, _ in left]}; "
          f"their natural drift, sigma/window: {[float(f'{abs(drift[d]):.5f}') for _, d in left]})")


if __name__ == "__main__":
    main()
