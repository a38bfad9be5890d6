"""Measure the collusion scan's calibrated penalty and write it to ``monitor/scan_penalty.py``.

For every group size n (3 .. --max-devices) it draws --samples groups of
independent N(0, 1) device means (seed n), computes the scan's statistic
``T_k`` of the most deviating set of every size k (`monitor.scan.set_statistics`,
the scan's own code) and finds the tail level ``t`` that a fraction
``q = 200 / samples`` of the groups pass. The effective number of sets is
``A = q / P(N(0, 1) > t)``: the union bound would say ``C(n, k)``. The
table holds ``ln A`` (3 decimals). About 10 minutes on one core:

    python scripts/scan_penalty.py --samples 2000000 --max-devices 64
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import norm

from monitor.scan import set_statistics

HEADER = '''"""The collusion scan's calibrated penalty: ``PENALTY[n][k - 1]`` is ln A(n, k), the log of the
effective number of sets of size k among n devices (see `monitor.scan.set_penalty`).

Generated, do not edit: {command}
(tail level {q:.0e} of {samples:,} groups of independent N(0, 1) means per group size, seed = n).
"""

N_MAX = {n_max}

PENALTY: tuple[tuple[float, ...], ...] = (
'''


def measure(n: int, samples: int, chunk: int = 50_000) -> list[float]:
    """ln A(n, k) for k = 1 .. n // 2."""
    rng = np.random.default_rng(n)
    t = np.concatenate([set_statistics(rng.normal(size=(chunk, n))).t for _ in range(samples // chunk)])
    q = 200 / len(t)
    out = []
    for k in range(1, n // 2 + 1):
        tq = float(np.quantile(t[:, k - 1], 1 - q))
        out.append(round(float(np.log(q / norm.sf(tq))), 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2_000_000, help="groups drawn per group size")
    ap.add_argument("--max-devices", type=int, default=64, help="largest group size measured")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "monitor" / "scan_penalty.py")
    a = ap.parse_args()
    command = f"python scripts/scan_penalty.py --samples {a.samples} --max-devices {a.max_devices}"
    lines = [HEADER.format(command=command, q=200 / a.samples, samples=a.samples, n_max=a.max_devices)]
    lines += ["    (),\n"] * 3
    for n in range(3, a.max_devices + 1):
        row = measure(n, a.samples)
        print(n, row, flush=True)
        lines.append(f"    ({', '.join(repr(x) for x in row)},),\n")
    lines.append(")\n")
    a.out.write_text("".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
