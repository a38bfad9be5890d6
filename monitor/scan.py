"""Subset scan: the set of devices of a group that deviates most, together, in one direction.

Pure numpy over a matrix of groups (rows) by device slots (columns), NaN where
a device is absent. Each value is a device's recent mean residual in
standard errors (N(0, 1) for an honest device). For every set size ``k``
the most deviating set is the ``k`` largest values; the statistic compares
their mean with the group's median (robust to the other side's outliers and
to a set that has pulled the consensus),

    T_k = (mean(top k) - median) / sqrt(1/k + pi / (2 n)),

which is close to N(0, 1) for any *fixed* set of honest devices. Choosing
the set is paid for with a penalty, the log of the number of sets of that
size (a union bound), so the evidence is

    L_k = T_k**2 / 2 - ln C(n, k)        (for T_k > 0),

and ``P(max over sets of size k of L_k > c)`` is at most about ``e**-c``
under honest noise, whatever the group's size. Colluders share one shift,
so each member's value is first capped at the weakest member's plus
``winsor`` standard errors: a single device far out cannot make a set with
honest neighbours (it would be its own, single-device, alarm).

>>> u = np.array([[5.0, 4.6, 5.3, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0]])
>>> r = subset_scan(u, min_k=2, max_fraction=0.5)
>>> int(r.k[0]), sorted(r.members(0).tolist()), round(float(r.evidence[0]), 1)
(3, [0, 1, 2], 18.9)
>>> lone = np.array([[40.0, 0.9, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0, 0.3]])
>>> round(float(subset_scan(lone, min_k=2, max_fraction=0.5).evidence[0]), 1)  # one device is not a set
-2.1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln


@dataclass(frozen=True)
class ScanResult:
    evidence: np.ndarray   # (R,) best L_k (−inf where no set size is allowed)
    k: np.ndarray          # (R,) set size that reached it (0 where none)
    order: np.ndarray      # (R, C) column order, most deviating first
    stat: np.ndarray       # (R,) T_k of that set

    def members(self, row: int) -> np.ndarray:
        """Column indices of the best set of a row."""
        return self.order[row, : int(self.k[row])]


def log_choose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """ln C(n, k), elementwise.

    >>> round(float(log_choose(np.array(20), np.array(6))), 3)
    10.565
    """
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def subset_scan(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5, winsor: float = 1.5) -> ScanResult:
    """The most deviating set of each row, high side (negate ``u`` for the low side)."""
    u = np.atleast_2d(np.asarray(u, dtype=float))
    R, C = u.shape
    valid = np.isfinite(u)
    n = valid.sum(axis=1)
    order = np.argsort(np.where(valid, -u, np.inf), axis=1, kind="stable")
    k_max = np.floor(max_fraction * n).astype(int)
    # set sizes past the largest allowed one in any row cannot win: work on the first K columns only
    K = min(C, int(np.max(np.minimum(k_max, n - 1), initial=0)))
    if K < max(min_k, 1):
        return ScanResult(np.full(R, -np.inf), np.zeros(R, int), order, np.zeros(R))
    ks = np.arange(1, K + 1)
    allowed = (ks[None, :] >= min_k) & (ks[None, :] <= k_max[:, None]) & (ks[None, :] < n[:, None])
    v = np.take_along_axis(np.where(valid, u, 0.0), order[:, :K], axis=1)    # descending, zeros past n
    top = np.cumsum(v, axis=1)                                               # sum of the top k
    # cap every member at the weakest member + winsor: sum_i min(v_i, v_k + winsor) over the top k
    cap = v + winsor                                                         # (R, K): cap for set size k
    over = v[:, :, None] > cap[:, None, :]                                   # [r, i, k]: member i above cap k
    inside = ks[:, None] <= ks[None, :]                                      # i (1-based) within the top k
    n_over = (over & inside[None]).sum(axis=1)                               # (R, K)
    # values above the cap are the first n_over ones (sorted): replace their sum by n_over * cap
    head = np.take_along_axis(np.c_[np.zeros(R), top], n_over, axis=1)
    capped = top - head + n_over * cap
    med = _sorted_median(u, order, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = capped / ks[None, :] - med[:, None]
        t = diff / np.sqrt(1.0 / ks[None, :] + np.pi / (2.0 * np.maximum(n[:, None], 1)))
        ev = np.where(allowed & (t > 0), 0.5 * t * t - _log_choose_table(n, ks), -np.inf)
    best = np.argmax(ev, axis=1)
    rows = np.arange(R)
    evidence = ev[rows, best]
    k = np.where(np.isfinite(evidence), best + 1, 0)
    return ScanResult(evidence=evidence, k=k, order=order, stat=np.where(k > 0, t[rows, best], 0.0))


def evidence_bounds(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(R,) upper bounds on `subset_scan`'s evidence of each row on the high side (``u``) and on the
    low side (``-u``), from the row's extremes and median alone (one sort, no scan): any set's capped
    mean is at most the extreme value, ``T_k``'s denominator is smallest at the largest allowed ``k``
    and ``ln C(n, k)`` is smallest at an end of the allowed range. ``-inf`` where no set size is allowed.

    >>> u = np.array([[5.0, 4.6, 5.3, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0], [0.3, -0.2, 0.1, 0.0, -0.1, 0.2, 0, 0, 0, 0]])
    >>> high, low = evidence_bounds(u)
    >>> bool(np.all(high >= subset_scan(u).evidence) and np.all(low >= subset_scan(-u).evidence))
    True
    """
    u = np.atleast_2d(np.asarray(u, dtype=float))
    valid = np.isfinite(u)
    srt = np.sort(np.where(valid, u, np.nan), axis=1)  # NaN last
    n = valid.sum(axis=1)
    rows = np.arange(len(u))
    med = (srt[rows, np.maximum((n - 1) // 2, 0)] + srt[rows, np.maximum(n // 2, 0)]) / 2.0
    k_lo = max(min_k, 1)
    k_hi = np.minimum(np.minimum(np.floor(max_fraction * n).astype(int), n - 1), u.shape[1])
    ok = k_hi >= k_lo
    k_hi = np.maximum(k_hi, k_lo)
    lc = _log_choose_table(n, np.arange(1, max(k_lo, int(k_hi.max(initial=0))) + 1))
    penalty = np.minimum(lc[:, k_lo - 1], lc[rows, k_hi - 1])
    denom = np.sqrt(1.0 / k_hi + np.pi / (2.0 * np.maximum(n, 1)))
    bounds = []
    for gap in (srt[rows, np.maximum(n - 1, 0)] - med, med - srt[:, 0]):
        with np.errstate(invalid="ignore"):
            t = np.maximum(gap, 0.0) / denom
        bounds.append(np.where(ok, 0.5 * t * t - penalty, -np.inf))
    return bounds[0], bounds[1]


def _log_choose_table(n: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """(R, K) ``log_choose(n[:, None], ks[None, :])`` from a table of ln Γ over 0 .. max n + 1
    (the same values; where ``k > n`` the result is meaningless and must be masked by the caller)."""
    lg = gammaln(np.arange(max(int(n.max(initial=0)), int(ks[-1])) + 2, dtype=float))  # lg[i] = ln Γ(i) = ln (i-1)!
    return lg[n + 1][:, None] - lg[ks + 1][None, :] - lg[np.maximum(n[:, None] - ks[None, :], 0) + 1]


def _sorted_median(u: np.ndarray, order: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Row medians of the valid values (0 for a row without any), given the valid columns of each
    row first in descending order (``order``) and their count ``n``: the mean of the two middle ones."""
    rows = np.arange(len(u))
    lo = u[rows, order[rows, np.maximum(n // 2, 0)]]
    hi = u[rows, order[rows, np.maximum((n - 1) // 2, 0)]]
    return np.where(n > 0, (lo + hi) / 2.0, 0.0)
