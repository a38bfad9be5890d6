"""Trace the long-run residual mean of `residual-baseline.patch` for one colluding set's members.

    git apply docs/experiments/residual-baseline.patch   # in a copy of the repository
    python docs/experiments/baseline-trace.py scenarios/tuning/poisoning.yaml 0 site-07 280 360

Runs the pipeline one sample at a time (``--detection.collusion-baseline 4``) over one scenario
and seed, and every 4th window between the two given prints, for each true set member of the
group: its 8- and 32-window residual means in standard errors, its long-run mean (``b``, in z)
and ``!`` while it is in an alarm of its own. Not a score: for seeing how much of an episode
the long-run mean takes in before the set is nominated.
"""

import sys

from monitor.config import DetectionSettings
from monitor.evaluation.runner import _batches
from monitor.evaluation.suite import simulated
from monitor.pipeline import Pipeline


def main() -> None:
    spec, seed, group, lo, hi = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    settings = DetectionSettings(collusion_baseline=4.0)
    for data, _ in simulated([spec], [seed]):
        truth = {lab["device_id"] for lab in data.labels
                 if lab.get("collusion_set") and lab["device_id"].startswith(group)}
        per_sample = len(data.device_ids)
        pipe = Pipeline(settings, window_seconds=data.interval)
        for k, batch in enumerate(_batches(data.readings(), per_sample), start=1):
            pipe.process(batch)
            if lo <= k <= hi and k % 4 == 0:
                names, c = pipe.registry.device_names, pipe.collusion
                members = [i for i, n in enumerate(names) if n in truth]
                print(k, " ".join(f"{names[i][-3:]}:{c._ewma[i, 0] / c._se[0]:+.1f}/{c._ewma[i, 1] / c._se[1]:+.1f}"
                                  f" b{c._base[i]:+.2f}{'!' if pipe.devices.firing[i] else ''}" for i in members))


if __name__ == "__main__":
    main()
