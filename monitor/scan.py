"""Subset scan: the set of devices of a group that deviates most, together, in one direction.

Pure numpy over a matrix of groups (rows) by device slots (columns), NaN where
a device is absent. Each value is a device's recent mean residual in
standard errors (N(0, 1) for an honest device). For every set size ``k``
the most deviating set is the ``k`` largest values; the statistic compares
their mean with the group's median (robust to the other side's outliers and
to a set that has pulled the consensus),

    T_k = (mean(top k) - median) / sqrt(1/k + pi / (2 n)),

which is close to N(0, 1) for any *fixed* set of honest devices. Choosing
the set is paid for with a penalty, the log of the *effective* number of
sets of that size (`set_penalty`), so the evidence is

    L_k = T_k**2 / 2 - ln A(n, k)        (for T_k > 0),

and ``P(L_k > c)`` is about ``e**-c`` times the Gaussian tail's
``1 / (T_k sqrt(2 pi))`` under honest noise, whatever the group's size. The
union bound, ``A = C(n, k)`` (all sets of that size), guarantees it but
overcharges large sets many times over: the top sets of one size overlap.
``A`` is measured on independent Gaussian noise (`monitor.scan_penalty`).
Colluders share one shift,
so each member's value is first capped at the weakest member's plus
``winsor`` standard errors: a single device far out cannot make a set with
honest neighbours (it would be its own, single-device, alarm).

>>> u = np.array([[5.0, 4.6, 5.3, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0]])
>>> r = subset_scan(u, min_k=2, max_fraction=0.5)
>>> int(r.k[0]), sorted(r.members(0).tolist()), round(float(r.evidence[0]), 1)
(3, [0, 1, 2], 22.3)
>>> round(float(subset_scan(u, min_k=2, max_fraction=0.5, penalty="union").evidence[0]), 1)
18.9
>>> lone = np.array([[40.0, 0.9, 0.2, -0.4, 0.1, -1.0, 0.5, -0.3, 0.0, 0.3]])
>>> round(float(subset_scan(lone, min_k=2, max_fraction=0.5).evidence[0]), 1)  # one device is not a set
0.6
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from monitor.scan_penalty import N_MAX, PENALTY


@dataclass(frozen=True)
class SetStatistics:
    """The top set of every size of each row, before any penalty (see `set_statistics`)."""

    t: np.ndarray          # (R, K) T_k of the top-k set of each row, k = 1 .. K
    diff: np.ndarray       # (R, K) its (weighted, capped) mean minus the row median, in the units of ``u``
    order: np.ndarray      # (R, C) column order, most deviating first
    n: np.ndarray          # (R,) valid devices per row
    k_max: np.ndarray      # (R,) largest set size allowed per row
    median: np.ndarray     # (R,) the row median


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


def set_statistics(u: np.ndarray, winsor: float = 1.5, scale: np.ndarray | None = None,
                   max_fraction: float = 0.5) -> SetStatistics:
    """``T_k`` of the most deviating set of every size ``k`` of each row (high side), before any
    penalty: the core of `subset_scan`, shared with the script that calibrates the penalty.

    >>> st = set_statistics(np.array([[2.0, 1.0, 0.0, -1.0]]))
    >>> [round(float(x), 2) for x in st.t[0]]
    [1.27, 1.06]
    """
    u, valid, w_all = _value_units(u, scale)
    R, C = u.shape
    n = valid.sum(axis=1)
    order = np.argsort(np.where(valid, -u, np.inf), axis=1, kind="stable")
    k_max = np.floor(max_fraction * n).astype(int)
    # set sizes past the largest allowed one in any row cannot win: work on the first K columns only
    K = min(C, int(np.max(np.minimum(k_max, n - 1), initial=0)))
    med = _sorted_median(u, order, n)
    if K < 1:
        return SetStatistics(np.zeros((R, 0)), np.zeros((R, 0)), order, n, k_max, med)
    ks = np.arange(1, K + 1)
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
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = capped / wsum - med[:, None]
        t = diff / np.sqrt(1.0 / wsum + np.pi / (2.0 * np.maximum(n[:, None], 1)))
    return SetStatistics(t, diff, order, n, k_max, med)


def subset_scan(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5, winsor: float = 1.5,
                scale: np.ndarray | None = None, penalty: str = "calibrated") -> ScanResult:
    """The most deviating set of each row, high side (negate ``u`` for the low side).

    ``scale``: each device's noise level relative to its group's typical one
    (1 where not given). Colluders share one shift in *value* units, which is
    a larger shift in standard errors for a quiet device than for a noisy one;
    with ``scale``, each value is first put in value units (``u * scale``, of
    variance ``scale**2``), sets are the largest of those, the cap is on the
    value-unit shift, and a set's mean is weighted by ``1 / scale**2`` (the
    likelihood ratio test of one common shift), so its statistic is N(0, 1)
    again for any fixed set of honest devices. ``penalty``: see `set_penalty`.

    >>> u = np.array([[6.0, 2.0, 0.3, -0.2, 0.1, -0.5, 0.4, 0.0, -0.3, 0.2]])
    >>> r = np.array([[0.5, 1.5, 1, 1, 1, 1, 1, 1, 1, 1]])  # one shift of 3: 6 for a quiet device, 2 for a noisy one
    >>> plain, weighted = subset_scan(u, 2, 0.5), subset_scan(u, 2, 0.5, scale=r)
    >>> round(float(plain.evidence[0]), 1), round(float(weighted.evidence[0]), 1), int(weighted.k[0])
    (3.1, 8.6, 2)
    """
    st = set_statistics(u, winsor, scale, max_fraction)
    R, K = st.t.shape
    if K < max(min_k, 1):
        return ScanResult(np.full(R, -np.inf), np.zeros(R, int), st.order, np.zeros(R), np.zeros(R), st.median)
    ks = np.arange(1, K + 1)
    allowed = (ks[None, :] >= min_k) & (ks[None, :] <= st.k_max[:, None]) & (ks[None, :] < st.n[:, None])
    with np.errstate(invalid="ignore"):
        ev = np.where(allowed & (st.t > 0), 0.5 * st.t * st.t - set_penalty(st.n, ks, penalty), -np.inf)
    best = np.argmax(ev, axis=1)
    rows = np.arange(R)
    evidence = ev[rows, best]
    k = np.where(np.isfinite(evidence), best + 1, 0)
    return ScanResult(evidence=evidence, k=k, order=st.order, stat=np.where(k > 0, st.t[rows, best], 0.0),
                      shift=np.where(k > 0, st.diff[rows, best], 0.0), median=st.median)


def evidence_bounds(u: np.ndarray, min_k: int = 2, max_fraction: float = 0.5, scale: np.ndarray | None = None,
                    penalty: str = "calibrated") -> tuple[np.ndarray, np.ndarray]:
    """(R,) upper bounds on `subset_scan`'s evidence of each row on the high side (``u``) and on the
    low side (``-u``), from one sort and no scan: the scan's own statistic of every top-``k`` set
    without the cap on its members (the cap only lowers a set's mean). The penalty is
    `set_penalty`'s, exact. ``-inf`` where no set size is allowed.

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
    k_hi = np.minimum(np.floor(max_fraction * n).astype(int), n - 1)
    K = min(C, int(k_hi.max(initial=0)))
    if K < max(min_k, 1):
        return np.full(R, -np.inf), np.full(R, -np.inf)
    order = np.argsort(np.where(valid, -u, np.inf), axis=1)         # valid values descending, then the absent
    srt = np.take_along_axis(u, order, axis=1)
    med = _sorted_median(u, order, n)[:, None]
    ks = np.arange(1, K + 1)
    allowed = (ks[None, :] >= min_k) & (ks[None, :] <= k_hi[:, None])
    pay = set_penalty(n, ks, penalty)
    var_med = np.pi / (2.0 * np.maximum(n, 1))[:, None]
    ws = None if w is None else np.take_along_axis(w, order, axis=1)
    if np.all(n == C):                                               # the lowest values, ascending
        lo, lo_w = srt[:, :-K - 1:-1], None if ws is None else ws[:, :-K - 1:-1]
    else:
        low = np.maximum(n[:, None] - 1 - np.arange(K)[None, :], 0)
        lo, lo_w = np.take_along_axis(srt, low, axis=1), None if ws is None else np.take_along_axis(ws, low, axis=1)
    sides = [(srt[:, :K] - med, None if ws is None else ws[:, :K]), (med - lo, lo_w)]
    bounds = []
    for d, wk in sides:                                              # deviations towards the side, weights
        with np.errstate(divide="ignore", invalid="ignore"):         # absent devices past a row's n: NaN, masked
            if wk is None:
                wsum = ks[None, :].astype(float)
                mean = np.cumsum(d, axis=1) / wsum
            else:
                wsum = np.cumsum(wk, axis=1)
                mean = np.cumsum(wk * d, axis=1) / wsum
            t = mean / np.sqrt(1.0 / wsum + var_med)
            bounds.append(np.where(allowed & (t > 0), 0.5 * t * t - pay, -np.inf).max(axis=1))
    if w is not None:
        # tied values: the scan's set among them (by column) has other weights than this order's; such
        # rows (rare: running means are continuous) are left to the exact scan
        pairs = np.arange(C - 1)[None, :] < (n - 1)[:, None]
        tied = ((srt[:, 1:] == srt[:, :-1]) & pairs).any(axis=1)
        bounds = [np.where(tied, np.inf, b) for b in bounds]
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


def set_penalty(n: np.ndarray, ks: np.ndarray, kind: str = "calibrated") -> np.ndarray:
    """(R, K) what choosing the most deviating set of size ``ks[j]`` among a row's ``n[i]`` devices
    costs, in log units. ``"union"``: ``ln C(n, k)``, the union bound over every set of that size.
    ``"calibrated"``: the log of the *effective* number of such sets, ``ln A(n, k)``, measured on
    independent Gaussian noise so that ``P(T_k > t) = A · P(N(0, 1) > t)`` in the tail
    (`monitor.scan_penalty`); never more than ``ln C(n, k)`` and never below 0. The best sets of
    one size overlap, so their statistics are far from independent: for 20 devices the union bound
    charges a set of 6 10.6 where 4.1 is the measured cost. Past the table's largest group,
    ``ln C(n, k)`` scaled by the table's ratio at the same fraction ``k / n``.

    >>> n, ks = np.array([20]), np.array([2, 6])
    >>> set_penalty(n, ks, "union").round(2).tolist(), set_penalty(n, ks).round(2).tolist()
    ([[5.25, 10.57]], [[4.15, 4.1]])
    """
    if kind not in ("calibrated", "union"):
        raise ValueError(f"unknown penalty {kind!r} (known: calibrated, union)")
    n, ks = np.asarray(n, dtype=np.int64), np.asarray(ks, dtype=np.int64)
    need = max(int(n.max(initial=0)), int(ks.max(initial=1))) + 1
    table = _penalty_matrix(kind, max(128, 1 << (need - 1).bit_length()))  # one gather per call
    return table[n[:, None], ks[None, :] - 1]


@functools.lru_cache(maxsize=8)
def _penalty_matrix(kind: str, size: int) -> np.ndarray:
    """[n, k - 1] `set_penalty` for every n and k below ``size`` (read-only)."""
    n, ks = np.arange(size), np.arange(1, size)
    lc = _log_choose_table(n, ks)
    out = lc.copy()
    if kind == "calibrated":
        measured = np.full((N_MAX + 1, N_MAX // 2), np.inf)               # +inf where not measured
        for m, row in enumerate(PENALTY):
            measured[m, :len(row)] = row
        rows, cols = min(size, N_MAX + 1), min(size - 1, N_MAX // 2)
        out[:rows, :cols] = measured[:rows, :cols]
        if size > N_MAX + 1:  # past the table: ln C(n, k) times its ratio at the same fraction k / n
            kf = np.clip(np.rint(ks[None, :] * N_MAX / n[rows:, None]).astype(int), 1, N_MAX // 2)
            out[rows:] = lc[rows:] * measured[N_MAX, kf - 1] / lc[N_MAX, kf - 1]
        out = np.minimum(lc, np.maximum(out, 0.0))
    out.setflags(write=False)
    return out


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
