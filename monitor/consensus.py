"""Robust consensus of a group per window: median, MAD, then the mean of the inliers.

Pure numpy over a matrix of windows (rows) by devices (columns), NaN where a
device sent nothing or is not trusted. A row with fewer than ``min_devices``
usable readings is *uncertain*: its consensus is NaN rather than a guess.

>>> x = np.array([[1.0, 1.2, 0.8, 1.1, 50.0], [2.0, np.nan, np.nan, np.nan, np.nan]])
>>> c = robust_consensus(x, min_devices=3)
>>> np.round(c.value, 3).tolist(), c.uncertain.tolist(), c.n_used.tolist()
([1.025, nan], [False, True], [4, 1])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Consensus:
    value: np.ndarray      # (R,) consensus per window, NaN if uncertain
    median: np.ndarray     # (R,) plain median of the usable readings
    spread: np.ndarray     # (R,) robust sigma (MAD * 1.4826) across devices
    n_used: np.ndarray     # (R,) readings that entered the final mean
    n_valid: np.ndarray    # (R,) usable readings before outlier rejection
    uncertain: np.ndarray  # (R,) bool
    inlier: np.ndarray     # (R, C) bool: the reading entered the final mean
    weight: np.ndarray     # (R, C) weight of each reading in the final mean (0 if it did not enter)

    def leave_one_out(self, values: np.ndarray) -> np.ndarray:
        """(R, C) consensus of each row *without* each device's own reading.

        A device is judged against the others: its residual then has the same
        variance whether or not it is trusted, which keeps its learned scale
        valid once it is excluded.
        """
        wsum = self.weight.sum(axis=1, keepdims=True)
        rest = wsum - self.weight
        loo = np.divide(self.value[:, None] * wsum - self.weight * np.where(self.inlier, values, 0.0), rest,
                        out=np.broadcast_to(self.value[:, None], values.shape).copy(),
                        where=self.inlier & (rest > 1e-12))
        return loo


def nanmedian_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of each row ignoring NaN (NaN for an empty row), and the count used."""
    s = np.sort(x, axis=1)  # NaN sort last
    n = np.sum(~np.isnan(x), axis=1)
    lo = np.clip((n - 1) // 2, 0, max(x.shape[1] - 1, 0))
    hi = np.clip(n // 2, 0, max(x.shape[1] - 1, 0))
    a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
    med = np.where(n > 0, 0.5 * (a + b), np.nan)
    return med, n


def robust_consensus(values: np.ndarray, min_devices: int = 3, cutoff: float = 3.0,
                     min_spread: float = 1e-9, steps: int = 2, weights: np.ndarray | None = None) -> Consensus:
    """Median/MAD consensus with a one-step outlier rejection, per row.

    Parameters
    ----------
    values
        (R, C) readings, NaN for missing or excluded devices.
    min_devices
        Fewer usable readings than this make the row uncertain.
    cutoff
        Readings further than ``cutoff`` robust sigmas from the median are
        left out of the final mean.
    steps
        Rejection rounds: each recomputes median and MAD from the readings
        kept so far (a second round catches liars that inflated the first MAD).
    weights
        (R, C) non-negative weight of each reading in the final mean (e.g. the
        device's reputation); default 1.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError("values must be a 2-D (windows x devices) matrix")
    kept = x
    plain_median, n_valid = nanmedian_rows(x)
    for _ in range(max(1, steps)):
        med, _ = nanmedian_rows(kept)
        dev = np.abs(x - med[:, None])
        mad, _ = nanmedian_rows(np.where(np.isnan(kept), np.nan, dev))
        spread = MAD_TO_SIGMA * mad
        tol = cutoff * np.maximum(spread, min_spread)
        inlier = dev <= tol[:, None]  # False for NaN
        kept = np.where(inlier, x, np.nan)
    n_used = inlier.sum(axis=1)
    w = np.where(inlier, 1.0 if weights is None else weights, 0.0)
    wsum = w.sum(axis=1)
    total = (w * np.where(inlier, x, 0.0)).sum(axis=1)
    mean = np.divide(total, wsum, out=np.full(len(x), np.nan), where=wsum > 0)
    uncertain = n_valid < min_devices
    value = np.where(uncertain, np.nan, mean)
    return Consensus(value=value, median=plain_median, spread=spread, n_used=n_used,
                     n_valid=n_valid, uncertain=uncertain, inlier=inlier, weight=w)
