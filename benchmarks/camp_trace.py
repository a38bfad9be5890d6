"""Every held set the camp rule (`collusion_camp`) looked at: its members, the devices standing with it, its group.

    python benchmarks/camp_trace.py --scenarios scenarios/tuning/collusion-in-spread.yaml --seeds 0,1,2,3 [--detection.option value ...]

Runs the monitor on each scenario and seed and prints one line per held set that reached the rule
(its shift within the spread, not vouched for by the take-over check): the group, the window it
was nominated in (samples from the start), its direction, how many members and devices standing
with it were measured over half the hold or more, out of how many devices, their share, and
whether it was dropped as a camp (share at least ``collusion_camp``). With the rule off
(``--detection.collusion-camp 0``) nothing reaches it.
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import fleet_args
from monitor.collusion import CollusionDetector
from monitor.evaluation.runner import run_monitor
from simulators import FleetSimulator, load_scenario, to_eval_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args, scenarios, seeds, settings = fleet_args(ap)
    seen: list[tuple] = []
    count = CollusionDetector._camp_count

    def traced(self, s, *rest):
        held, standing, measured = count(self, s, *rest)
        seen.append((s.group, s.nominated, s.direction, held, standing, measured, self.camp))
        return held, standing, measured

    CollusionDetector._camp_count = traced
    for spec in scenarios:
        for seed in seeds:
            data = to_eval_data(FleetSimulator(load_scenario(spec), seed=seed))
            seen.clear()
            run_monitor(data, settings)
            t0, w = float(np.nanmin(data.ts)), data.interval
            for g, nominated, direction, held, standing, measured, camp in seen:
                share = (held + standing) / measured
                print(f"{spec.split('/')[-1]} seed {seed} group {g} nominated {nominated - t0 / w:.0f} "
                      f"{'high' if direction > 0 else 'low'}: {held} members + {standing} standing of {measured} "
                      f"= {share:.0%} {'camp (dropped)' if share >= camp else ''}")


if __name__ == "__main__":
    main()
