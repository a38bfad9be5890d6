"""How soon a colluding set can be nominated at all: the scan on ideal data against a matched oracle.

    python benchmarks/isolation_limit.py --devices 30 --members 3 --shift 0.5 --groups 400 --seed 0

Independent N(0, 1) residuals for ``groups`` groups of ``devices``, of which
``members`` shift by ``shift`` (in their own sigmas) from sample 0: no weather,
no consensus pulled by the set, no drift. Prints, in samples after the onset,
the median and quartiles of

* the monitor's scan (`CollusionDetector`'s three running means, `subset_scan`
  with its penalty) first nominating a set holding at least half the members,
  at the detector's threshold;
* an oracle that knows the onset and the members: the same statistic for the
  true set with each device's plain mean since the onset (the matched window,
  the best any window can do), first reaching the same threshold.

The oracle is the floor set by the threshold (the false-nomination rate chosen
for bar 5): no running mean can nominate sooner on average. ``--ladder 8,16,32,64,128``
scans other memories than the detector's three.
"""

from __future__ import annotations

import argparse

import numpy as np

from monitor.collusion import CollusionDetector
from monitor.scan import set_penalty, subset_scan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=30)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--shift", type=float, default=0.5)
    ap.add_argument("--groups", type=int, default=400)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--threshold", type=float, default=14.0)
    ap.add_argument("--memory", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ladder", default="", help="comma-separated memories (windows) instead of the detector's three")
    args = ap.parse_args()
    n, k, R = args.devices, args.members, args.groups
    rng = np.random.default_rng(args.seed)
    det = CollusionDetector(threshold=args.threshold, memory=args.memory)
    lam, se = det._lam, det._se
    if args.ladder:
        lam = 1.0 / np.array([float(m) for m in args.ladder.split(",")])
        se = np.sqrt(lam / (2.0 - lam))
    ewma = np.zeros((R, n, len(lam)))
    total = np.zeros((R, n))
    shift = np.where(np.arange(n) < k, args.shift, 0.0)
    scan_first = np.full(R, np.inf)
    oracle_first = np.full(R, np.inf)
    pen = float(set_penalty(np.array([n]), np.array([k]))[0, 0])
    denom = np.sqrt(1.0 / k + np.pi / (2.0 * n))
    for t in range(args.samples):
        z = rng.normal(size=(R, n)) + shift
        ewma += lam[None, None, :] * (np.clip(z, -det.clip, det.clip)[:, :, None] - ewma)
        total += z
        # oracle: the true set's statistic on the plain means since the onset (standard errors)
        u = total / np.sqrt(t + 1)
        tstat = (u[:, :k].mean(axis=1) - np.median(u, axis=1)) / denom
        hit = (0.5 * tstat ** 2 - pen >= args.threshold) & (tstat > 0) & ~np.isfinite(oracle_first)
        oracle_first[hit] = t + 1
        # the monitor's scan on its running means, every memory
        todo = ~np.isfinite(scan_first)
        if not todo.any():
            continue
        for s in range(len(lam)):
            rows = np.flatnonzero(todo)
            res = subset_scan(ewma[rows, :, s] / se[s], det.min_members, det.max_fraction, det.winsor)
            for i in np.flatnonzero(res.evidence >= args.threshold):
                named = res.members(i)
                if np.sum(named < k) * 2 >= k:
                    scan_first[rows[i]] = t + 1
                    todo[rows[i]] = False
    memories = "/".join(f"{1 / x:.0f}" for x in lam)
    for name, first in ((f"scan (running means {memories})", scan_first), ("oracle (matched window)", oracle_first)):
        found = np.isfinite(first)
        q = np.percentile(first[found], [25, 50, 75]) if found.any() else [np.nan] * 3
        print(f"{name}: {found.sum()}/{R} within {args.samples} samples; median {q[1]:.0f}, "
              f"quartiles {q[0]:.0f}–{q[2]:.0f}")


if __name__ == "__main__":
    main()
