"""When each colluding set left the consensus: per set, its members, how many were isolated and when.

    python benchmarks/isolation.py --scenarios scenarios/reporting/collusion-in-spread.yaml --seeds 1001,1002

A member counts as isolated when it was first taken out of the consensus as a
member of a nominated or alerted set; the set's delay (in samples from its
start) is when half its members were (as in the scoreboard's isolation table).
Extra ``--detection.x value`` options go to the detection settings.
"""

from __future__ import annotations

import argparse

from _replay import fleet_args
from monitor.evaluation.runner import evaluate
from monitor.evaluation.suite import simulated


def main() -> None:
    _, scenarios, seeds, settings = fleet_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    for data, clean in simulated(scenarios, seeds):
        r = evaluate(data, settings, clean=clean, device_baselines={}, consensus_baselines={})
        for x in r["collusion"]["raw"]["isolation"]:
            delay = "never" if x["delay_s"] is None else f"{x['delay_s'] / data.interval:.1f} samples"
            print(f"{r['name']} seed {r['meta'].get('seed')} group {x['group']} {x['class']}: "
                  f"{x['members_isolated']} of {x['members']} members isolated, half after {delay}")


if __name__ == "__main__":
    main()
