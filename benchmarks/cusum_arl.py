"""A two-sided CUSUM on honest N(0, 1) residuals (clipped at 4, as in the monitor): windows between
false alarms, and the level a ramp has reached when it is flagged.

    python benchmarks/cusum_arl.py --k 0.15 --h 24 --ramp 0.001 --seed 1
"""

from __future__ import annotations

import argparse

import numpy as np


def first_alarm(x: np.ndarray, k: float, h: float) -> np.ndarray:
    """Index of the first alarm of each row (the row's length if none)."""
    n, t_max = x.shape
    p, m, first, alive = np.zeros(n), np.zeros(n), np.full(n, t_max), np.ones(n, bool)
    for t in range(t_max):
        p = np.maximum(0.0, p + x[:, t] - k)
        m = np.maximum(0.0, m - x[:, t] - k)
        hit = alive & ((p >= h) | (m >= h))
        first[hit] = t
        alive &= ~hit
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=float, default=0.15)
    ap.add_argument("--h", type=float, default=24.0)
    ap.add_argument("--ramp", type=float, default=0.001, help="ramp slope, sigma per window")
    ap.add_argument("--streams", type=int, default=400)
    ap.add_argument("--windows", type=int, default=60_000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    noise = np.clip(rng.standard_normal((a.streams, a.windows)), -4, 4)
    f = first_alarm(noise, a.k, a.h)
    alarms = int((f < a.windows).sum())
    arl = np.minimum(f, a.windows).sum() / max(alarms, 1)
    print(f"k={a.k} h={a.h}: {alarms} false alarms in {a.streams} x {a.windows} windows; "
          f"about one per {arl:,.0f} windows")
    t_ramp = int(3 / a.ramp)
    ramp = np.clip(rng.standard_normal((a.streams, t_ramp)) + a.ramp * np.arange(t_ramp)[None, :], -4, 4)
    g = first_alarm(ramp, a.k, a.h)
    print(f"ramp {a.ramp} sigma/window: flagged at {np.median(g) * a.ramp:.3f} sigma (median), "
          f"{np.percentile(g, 90) * a.ramp:.3f} (90th percentile); {np.mean(g < t_ramp):.0%} flagged")


if __name__ == "__main__":
    main()
