"""How often the collusion subset scan nominates a set on honest noise alone.

Simulates groups of honest devices (independent Gaussian readings, each
judged against the leave-one-out mean of the others, as the pipeline does),
keeps the collusion detector's running means at its three memories, scans
both directions every window and prints, per evidence threshold, the number
of episodes above it per 100,000 group-windows.

    python benchmarks/scan_null.py --devices 20 --groups 200 --windows 5000 --seed 0 [--spread 0.5] [--penalty union]

With ``--spread s`` the devices' noise levels are drawn from U(1 - s, 1 + s)
(as the simulator's) and the scan is given each device's level relative to
its group's median, as the pipeline does.
"""

from __future__ import annotations

import argparse

import numpy as np

from monitor.scan import subset_scan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--windows", type=int, default=5000)
    ap.add_argument("--memory", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--spread", type=float, default=0.0, help="device noise levels U(1 - s, 1 + s); 0: all equal")
    ap.add_argument("--penalty", choices=["calibrated", "union"], default="calibrated", help="what choosing a set costs")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n, G, T = a.devices, a.groups, a.windows
    lams = 1.0 / np.array([a.memory / 4, a.memory, 4 * a.memory])
    e = np.zeros((3, G, n))
    best = np.full((T, G), -np.inf)
    level = rng.uniform(1 - a.spread, 1 + a.spread, (G, n))
    scale = level / np.median(level, axis=1, keepdims=True) if a.spread > 0 else None
    for t in range(T):
        x = rng.standard_normal((G, n))
        loo = (x.sum(1, keepdims=True) - x) / (n - 1)
        z = (x - loo) / np.sqrt(1 + 1 / (n - 1))
        for i, lam in enumerate(lams):
            e[i] = (1 - lam) * e[i] + lam * z
            if t < 3 / lam:  # let the running mean settle
                continue
            u = e[i] / np.sqrt(lam / (2 - lam))
            for sign in (1, -1):
                best[t] = np.maximum(best[t], subset_scan(sign * u, 2, 0.5, scale=scale, penalty=a.penalty).evidence)
    for c in (6, 8, 10, 12, 14):
        ex = best > c
        episodes = (ex[1:] & ~ex[:-1]).sum() + ex[0].sum()
        print(f"devices={n} penalty={a.penalty} threshold={c}: {episodes / (G * T) * 1e5:.2f} episodes per 100k group-windows")


if __name__ == "__main__":
    main()
