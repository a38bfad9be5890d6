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
    shift: np.ndarray      # (R,) the set's (weighted) mean minus the group median, in the units of ``u``
    median: np.ndarray     # (R,) the group median it is measured from (value units when scaled)

    def members(self, row: int) -> np.ndarray:
        """Column indices of the best set of a row."""
        return self.order[row, : int(self.k[row])]


def log_choose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """ln C(n, k), elementwise.

    >>> round(float(log_choose(np.array(20), np.array(6))), 3)
    10.565
    """
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _value_units(u: np.ndarray, scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(values, valid, weights): ``u`` in value units (``u * scale``) and the weights ``1 / scale**2``
    (None without ``scale``); a device without a positive scale is left out."""
    u = np.atleast_2d(np.asarray(u, dtype=float))
    valid = np.isfinite(u)
    if scale is None:
        return u, valid, None
    r = np.atleast_2d(np.asarray(scale, dtype=float))
    valid &= np.isfinite(r) & (r > 0)
    r = np.where(valid, r, 1.0)
    return u * r, valid, np.where(valid, 1.0 / (r * r), 0.0)


def subset_scan(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5, winsor: float = 1.5,
                scale: np.ndarray | None = None) -> ScanResult:
    """The most deviating set of each row, high side (negate ``u`` for the low side).

    ``scale``: each device's noise level relative to its group's typical one
    (1 where not given). Colluders share one shift in *value* units, which is
    a larger shift in standard errors for a quiet device than for a noisy one;
    with ``scale``, each value is first put in value units (``u * scale``, of
    variance ``scale**2``), sets are the largest of those, the cap is on the
    value-unit shift, and a set's mean is weighted by ``1 / scale**2`` (the
    likelihood ratio test of one common shift), so its statistic is N(0, 1)
    again for any fixed set of honest devices.

    >>> u = np.array([[6.0, 2.0, 0.3, -0.2, 0.1, -0.5, 0.4, 0.0, -0.3, 0.2]])
    >>> r = np.array([[0.5, 1.5, 1, 1, 1, 1, 1, 1, 1, 1]])  # one shift of 3: 6 for a quiet device, 2 for a noisy one
    >>> plain, weighted = subset_scan(u, 2, 0.5), subset_scan(u, 2, 0.5, scale=r)
    >>> round(float(plain.evidence[0]), 1), round(float(weighted.evidence[0]), 1), int(weighted.k[0])
    (1.3, 6.8, 2)
    """
    u, valid, w_all = _value_units(u, scale)
    R, C = u.shape
    n = valid.sum(axis=1)
    order = np.argsort(np.where(valid, -u, np.inf), axis=1, kind="stable")
    k_max = np.floor(max_fraction * n).astype(int)
    # set sizes past the largest allowed one in any row cannot win: work on the first K columns only
    K = min(C, int(np.max(np.minimum(k_max, n - 1), initial=0)))
    if K < max(min_k, 1):
        return ScanResult(np.full(R, -np.inf), np.zeros(R, int), order, np.zeros(R), np.zeros(R),
                          _sorted_median(u, order, n))
    ks = np.arange(1, K + 1)
    allowed = (ks[None, :] >= min_k) & (ks[None, :] <= k_max[:, None]) & (ks[None, :] < n[:, None])
    v = np.take_along_axis(np.where(valid, u, 0.0), order[:, :K], axis=1)    # descending, zeros past n
    if w_all is None:
        w, wsum = None, np.broadcast_to(ks[None, :].astype(float), (R, K))
        top = np.cumsum(v, axis=1)                                           # sum of the top k
    else:
        w = np.take_along_axis(w_all, order[:, :K], axis=1)
        wsum = np.cumsum(w, axis=1)
        top = np.cumsum(w * v, axis=1)                                       # weighted sum of the top k
    # cap every member at the weakest member + winsor: sum_i w_i min(v_i, v_k + winsor) over the top k
    cap = v + winsor                                                         # (R, K): cap for set size k
    over = v[:, :, None] > cap[:, None, :]                                   # [r, i, k]: member i above cap k
    inside = ks[:, None] <= ks[None, :]                                      # i (1-based) within the top k
    n_over = (over & inside[None]).sum(axis=1)                               # (R, K)
    # values above the cap are the first n_over ones (sorted): replace their sum by their weight * cap
    head = np.take_along_axis(np.c_[np.zeros(R), top], n_over, axis=1)
    head_w = n_over if w is None else np.take_along_axis(np.c_[np.zeros(R), wsum], n_over, axis=1)
    capped = top - head + head_w * cap
    med = _sorted_median(u, order, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = capped / wsum - med[:, None]
        t = diff / np.sqrt(1.0 / wsum + np.pi / (2.0 * np.maximum(n[:, None], 1)))
        ev = np.where(allowed & (t > 0), 0.5 * t * t - _log_choose_table(n, ks), -np.inf)
    best = np.argmax(ev, axis=1)
    rows = np.arange(R)
    evidence = ev[rows, best]
    k = np.where(np.isfinite(evidence), best + 1, 0)
    return ScanResult(evidence=evidence, k=k, order=order, stat=np.where(k > 0, t[rows, best], 0.0),
                      shift=np.where(k > 0, diff[rows, best], 0.0), median=med)


def evidence_bounds(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5,
                    scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(R,) upper bounds on `subset_scan`'s evidence of each row on the high side (``u``) and on the
    low side (``-u``), without a scan. With ``d_i`` a member's deviation from the row's median (value
    units; positive towards the side) and ``w_i`` its weight, a set's statistic is at most
    ``sum(w_i d_i) / sqrt(W)`` (W = sum(w_i); capping only lowers the d_i) and, by Cauchy-Schwarz, at
    most ``sqrt(sum(w_i d_i**2))`` over its members with ``d_i > 0``: at most the sum of the ``k``
    largest such terms of the row. ``ln C(n, k)`` is exact. ``-inf`` where no set size is allowed.

    >>> u = np.array([[5.0, 4.6, 5.3, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0], [0.3, -0.2, 0.1, 0.0, -0.1, 0.2, 0, 0, 0, 0]])
    >>> high, low = evidence_bounds(u)
    >>> bool(np.all(high >= subset_scan(u).evidence) and np.all(low >= subset_scan(-u).evidence))
    True
    >>> r = np.array([[0.5, 1.5, 1, 1, 1, 2, 1, 1, 0.7, 1]] * 2)
    >>> high, low = evidence_bounds(u, scale=r)
    >>> bool(np.all(high >= subset_scan(u, scale=r).evidence) and np.all(low >= subset_scan(-u, scale=r).evidence))
    True
    """
    u, valid, w = _value_units(u, scale)
    R, C = u.shape
    n = valid.sum(axis=1)
    med = _middle(np.sort(np.where(valid, u, np.nan), axis=1), n)[:, None]  # (NaN sorts last)
    k_hi = np.minimum(np.floor(max_fraction * n).astype(int), n - 1)
    K = min(C, int(k_hi.max(initial=0)))
    if K < max(min_k, 1):
        return np.full(R, -np.inf), np.full(R, -np.inf)
    ks = np.arange(1, K + 1)
    allowed = (ks[None, :] >= min_k) & (ks[None, :] <= k_hi[:, None])
    penalty = _log_choose_table(n, ks)
    bounds = []
    for dev in (u - med, med - u):
        terms = np.where(valid & (dev > 0), dev * dev if w is None else w * dev * dev, 0.0)
        top = np.cumsum(-np.sort(-terms, axis=1)[:, :K], axis=1)  # the k largest terms
        bounds.append(np.where(allowed, 0.5 * top - penalty, -np.inf).max(axis=1))
    return bounds[0], bounds[1]


def row_median(x: np.ndarray) -> np.ndarray:
    """Median of the finite values of each row by one sort (NaN where a row has none); faster than
    ``np.nanmedian`` on many short rows.

    >>> row_median(np.array([[3.0, np.nan, 1.0, 2.0], [np.nan] * 4])).tolist()[0]
    2.0
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    n = np.isfinite(x).sum(axis=1)
    srt = np.sort(np.where(np.isfinite(x), x, np.nan), axis=1)  # NaN last
    return np.where(n > 0, _middle(srt, n), np.nan)


def _middle(srt: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The mean of the two middle values of each row's first ``n`` (sorted) values."""
    rows = np.arange(len(srt))
    return (srt[rows, np.maximum((n - 1) // 2, 0)] + srt[rows, np.maximum(n // 2, 0)]) / 2.0


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
