"""How many learner alerts the differential test raises, by type and by whether their group is attacked.

    python benchmarks/learner_alerts.py --scenarios scenarios/tuning/poisoning.yaml,scenarios/tuning/collusion-gross.yaml --seeds 0,1,2,3 [--detection.option value ...]

Runs the monitor on each scenario and seed (simulated, with ground truth) and counts the firing
``learner`` alerts (``poisoning``: the guarded model and its unguarded shadow diverged;
``regression``: a new model version forecast its reference windows worse) in groups with an
attack and in groups without one.
"""

from __future__ import annotations

import argparse
from collections import Counter

from _replay import fleet_args
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated


def main() -> None:
    _, scenarios, seeds, settings = fleet_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    count: Counter = Counter()
    for data, _ in simulated(scenarios, seeds):
        alerts, *_ = run_monitor(data, settings)
        attacked = {r["group"] for r in data.labels if r["status"] == "attack"}
        for a in alerts:
            if a.kind == "learner" and a.state == "firing":
                count[(a.type, "attacked group" if a.group in attacked else "group without an attack")] += 1
    for (typ, where), n in sorted(count.items()):
        print(f"{typ:10s} {where:24s} {n}")
    print(f"{sum(count.values())} learner alerts")


if __name__ == "__main__":
    main()
