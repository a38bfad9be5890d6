"""When each colluding set left the consensus: per set, its members, how many were isolated and when.

    python benchmarks/isolation.py --scenarios scenarios/reporting/collusion-in-spread.yaml --seeds 1001,1002

A member counts as isolated when it was first taken out of the consensus as a
member of a nominated or alerted set; the set's delay (in samples from its
start) is when half its members were (as in the scoreboard's isolation table);
"any reason" counts also a member taken out by an alarm of its own or by quarantine.
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
            delay, anyway = ("never" if t is None else f"{t / data.interval:.1f} samples"
                             for t in (x["delay_s"], x.get("delay_any_s")))
            print(f"{r['name']} seed {r['meta'].get('seed')} group {x['group']} {x['class']}: "
                  f"{x['members_isolated']} of {x['members']} members isolated, half after {delay} "
                  f"(out of the consensus for any reason: {anyway})")


if __name__ == "__main__":
    main()
