"""Trace for rest-spread.patch (apply it first): at each held set's confirmation or drop, the rest's chi-square.

    python docs/experiments/rest-spread-trace.py scenarios/tuning/benign-events.yaml 6,7

Prints, per held set that is alerted or dropped at the end of its hold: group, window, outcome, size,
the rest's chi-square per degree of freedom (what the patch would test, with the rule off) and the
members' chi-square. An experiment tool, not part of the product.
"""
import sys, numpy as np
from monitor.config import DetectionSettings
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated
import monitor.collusion as C
orig = C.CollusionDetector._confirm
def traced(self, s, window, devices, z, scale):
    r0 = self.rest; self.rest = True
    counts = [s.shifts[d][1] for d in s.members if d in s.shifts]
    rs = None
    if counts and min(counts) + 1 >= self.confirm:
        a = np.array([s.shifts[d] for d in s.members]); cnt = a[:, 1]; mm = a[:, 0] / cnt; o2 = a[:, 2] / cnt
        w_ = 1 / (o2 / cnt + self.tolerance ** 2 * o2); rs = self._rest_spread(s, float((w_ * mm).sum() / w_.sum()))
    self.rest = r0
    out = orig(self, s, window, devices, z, scale)
    if rs is not None and (out or s.group not in self._active):
        print(f"g{s.group} w{window} {'ALERT' if out else 'drop '} n={len(s.members)} rest={rs:.2f} q={s.homogeneity:.2f}")
    return out
C.CollusionDetector._confirm = traced
spec, seeds = sys.argv[1], [int(x) for x in sys.argv[2].split(',')]
for seed in seeds:
    for data, _ in simulated([spec], [seed]):
        print('seed', seed); run_monitor(data, DetectionSettings(collusion_rest=False))
