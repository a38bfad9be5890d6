"""Which devices the camouflage test (`monitor.mimic`) alarms on: honest ones, and what the others are.

    python benchmarks/mimic_alarms.py --scenarios scenarios/tuning/honest.yaml,scenarios/tuning/collusion-variants.yaml --seeds 0,1,2,3
    python benchmarks/mimic_alarms.py --beijing [--seeds 1001]

Runs the monitor on each scenario and seed (simulated, with ground truth; or the Beijing replay with
the scoreboard's injected attacks, ``--seeds`` then being the injection's seed) and prints, per run,
how many devices were ever in a camouflage alarm (the CUSUM at its threshold), how many of them honest,
how many collusion alerts named a camouflage member (and how many of those members are honest), and
for each labelled device in alarm what it is (``camouflage-lead``: the set's member that reports
the pulled consensus) and how many windows after its label's start the alarm came. Then the totals.
The detector's ``observe`` is wrapped to watch; nothing else changes. ``--detection.x value`` pairs as
for the other benchmarks; ``collusion_mimic`` is off by default, and is then set to 18 here.
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import beijing, detection_settings, label_type
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated
from monitor.mimic import MimicCusum

MIMIC_H = MimicCusum().h  # `collusion_mimic` when it is on: the test's own default threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beijing", action="store_true", help="the Beijing replay instead of --scenarios")
    ap.add_argument("--scenarios", default="", help="comma-separated scenario files")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds (default 0; for --beijing 1001)")
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    if settings.collusion_mimic <= 0:  # off by default: watch it at the threshold its docs give
        settings = settings.model_copy(update={"collusion_mimic": MIMIC_H})
    print(f"camouflage test threshold (collusion_mimic): {settings.collusion_mimic}")
    seeds = [int(s) for s in (args.seeds or ("1001" if args.beijing else "0")).split(",")]
    if args.beijing:
        runs = ((s, beijing(s)[1]) for s in seeds)
    elif args.scenarios:
        runs = ((seed, data) for seed in seeds for data, _ in simulated(args.scenarios.split(","), [seed]))
    else:
        raise SystemExit("give --scenarios or --beijing")
    first: dict[int, int] = {}
    observe = MimicCusum.observe

    def watching(self, devices, z, windows):
        observe(self, devices, z, windows)
        d = devices[devices >= 0]
        on = d[self.alarmed(d)]
        w = int(np.max(windows))
        for x in on.tolist():
            first.setdefault(x, w)

    MimicCusum.observe = watching
    total = honest_total = honest_alarmed = 0
    for seed, data in runs:
        first.clear()
        alerts, _, pipe, *_ = run_monitor(data, settings)
        names = pipe.registry.device_names
        t0 = float(np.nanmin(data.ts))
        labels: dict[str, list[tuple[str, float]]] = {}
        for lab in data.labels:
            if lab["status"] != "honest":
                labels.setdefault(lab["device_id"], []).append((label_type(lab), (lab["start_ts"] - t0) / data.interval))
        w0 = round(t0 / data.interval)
        alarmed = {names[d]: w - w0 for d, w in first.items() if d < len(names)}
        honest = [n for n in alarmed if n not in labels]
        n_honest = sum(1 for n in names if n not in labels)
        total += len(alarmed)
        honest_total += n_honest
        honest_alarmed += len(honest)
        final = {a.alert_id: a for a in alerts if a.kind == "collusion" and a.state == "firing"}  # as last alerted
        named = [(a, a.evidence.get("camouflage", [])) for a in final.values()]
        named = [(a, ms) for a, ms in named if ms]
        members = [m for _, ms in named for m in ms]
        print(f"{data.name} seed {seed}: {len(alarmed)} devices in a camouflage alarm, {len(honest)} of "
              f"{n_honest} honest ones; {len(named)} of {len(final)} collusion alerts name a camouflage member, "
              f"{sum(1 for m in members if m not in labels)} of the {len(members)} named honest (*)")
        for a, ms in named:
            print(f"   {a.group}: set {', '.join(a.devices)}; camouflage "
                  + ", ".join(m + ("*" if m not in labels else "") for m in ms))
        for n, w in sorted(alarmed.items()):
            if n in labels:
                what = ", ".join(f"{t} +{w - s:.0f}" for t, s in labels[n])
                print(f"   {n}: {what}")
    print(f"honest devices in a camouflage alarm: {honest_alarmed} of {honest_total}; all devices: {total}")


if __name__ == "__main__":
    main()
