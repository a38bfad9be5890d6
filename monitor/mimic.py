"""Devices that read too close to their group: a CUSUM for residual steps far smaller than the group's.

A camouflage member of a colluding set does not shift with the others: it reports where they pull
the consensus (the group's mean plus the pull, and a little noise of its own), so its residual
stays near zero and no mean-shift test sees it. What gives it away is that it is *too* quiet: its
residual moves from window to window far less than any honest device's, whose own noise is in its
reading. Each window every device's residual step ``u = (z_t - z_prev) / sqrt(2)`` (N(0, 1) for an
honest device, free of any level shift) is compared with its group's in the same window:

    ratio = 0.455 * u**2 / median(u**2 of the group)

(0.455 is the median of a chi-square with one degree of freedom, so an honest device's ratio is
about 1 whatever the group's noise is doing now: calm nights and stormy days move every device's
steps together). A one-sided CUSUM of the log-likelihood ratio of steps with ``r**2`` times the
group's variance against steps with the group's own,

    s = max(0, s + ratio / 2 * (1 - 1 / r**2) - ln r),

alarms at ``h``. The per-window drift is about -2.5 for an honest device and +0.7 for one whose
steps are a tenth of its group's (``r`` = 0.35), so ``h`` = 18 takes some 25 windows.

Pure numpy over a window round (groups by device slots); the state per device is two float32
(the CUSUM and the last residual) and one int32 (the window the CUSUM left zero): 12 bytes.

>>> q = MimicCusum(h=18.0)
>>> q.resize(8)
>>> rng = np.random.default_rng(0)
>>> devices = np.arange(8)[None, :]
>>> for w in range(100):
...     z = rng.normal(size=(1, 8))
...     z[0, 7] *= 0.1 if w >= 40 else 1.0   # device 7 starts copying its group at window 40
...     q.observe(devices, z, np.array([w]))
>>> np.flatnonzero(q.alarmed(np.arange(8))).tolist(), 40 <= int(q.onset(np.array([7]))[0]) < 100
([7], True)
"""

from __future__ import annotations

import numpy as np

from monitor.scan import row_median

CHI2_1_MEDIAN = 0.455  # median of a chi-square with one degree of freedom


class MimicCusum:
    """Per device a CUSUM for residual steps ``r`` times its group's or smaller (see the module).
    ``min_group``: devices with a step this window a group needs for its median to be used."""

    def __init__(self, h: float = 18.0, r: float = 0.35, clip: float = 4.0, min_group: int = 5) -> None:
        if not (h > 0 and 0 < r < 1 and clip > 0 and min_group >= 3):
            raise ValueError("MimicCusum needs h > 0, 0 < r < 1, clip > 0, min_group >= 3")
        self.h, self.r, self.clip, self.min_group = h, r, clip, min_group
        self._s = np.zeros(0, np.float32)                # the CUSUM
        self._prev = np.full(0, np.nan, np.float32)      # the last residual seen
        self._on = np.full(0, -1, np.int32)              # window the CUSUM last left zero

    def resize(self, n: int) -> None:
        if n > len(self._s):
            self._pad(max(n, 2 * len(self._s)))

    def _pad(self, size: int) -> None:
        """Grow the three per-device arrays to ``size`` (new devices: nothing seen yet)."""
        self._s = np.r_[self._s, np.zeros(size - len(self._s), np.float32)]
        self._prev = np.r_[self._prev, np.full(size - len(self._prev), np.nan, np.float32)]
        self._on = np.r_[self._on, np.full(size - len(self._on), -1, np.int32)]

    def observe(self, devices: np.ndarray, z: np.ndarray, windows: np.ndarray) -> None:
        """One window round: ``devices`` (R, C) indices (-1 absent), ``z`` (R, C) residuals (NaN where
        not scored), ``windows`` (R,). Rows with fewer than ``min_group`` steps update no CUSUM."""
        d = np.maximum(devices, 0)
        ok = (devices >= 0) & np.isfinite(z)
        u = np.where(ok, (z - self._prev[d]) / np.sqrt(2.0), np.nan)
        self._prev[d[ok]] = z[ok]
        u2 = u * u
        steps = np.isfinite(u2)
        med = row_median(u2)
        use = steps & (steps.sum(axis=1) >= self.min_group)[:, None] & (med > 0)[:, None]
        if not use.any():
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.minimum(CHI2_1_MEDIAN * u2 / med[:, None], self.clip ** 2)
        llr = 0.5 * ratio * (1.0 - 1.0 / self.r ** 2) - np.log(self.r)
        dd = d[use]
        old = self._s[dd]
        new = np.minimum(np.maximum(0.0, old + llr[use]), 2.0 * self.h).astype(np.float32)
        w = np.broadcast_to(windows[:, None], devices.shape)[use]
        self._on[dd] = np.where((old == 0.0) & (new > 0.0), w, self._on[dd])
        self._s[dd] = new

    def state_bytes_per_device(self) -> int:
        """Bytes of state kept per device (as the detectors' method of that name)."""
        return sum(a.itemsize for a in (self._s, self._prev, self._on))

    def alarmed(self, devices: np.ndarray) -> np.ndarray:
        return self._s[devices] >= self.h

    def onset(self, devices: np.ndarray) -> np.ndarray:
        """Window each device's CUSUM last left zero (-1: never)."""
        return self._on[devices]

    def reset(self, devices: np.ndarray) -> None:
        self._s[devices], self._prev[devices], self._on[devices] = 0.0, np.nan, -1

    def state_dict(self) -> dict:
        return {"s": self._s.tolist(), "prev": [None if not np.isfinite(x) else float(x) for x in self._prev],
                "on": self._on.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self._s = np.asarray(state.get("s", []), np.float32)
        self._prev = np.array([np.nan if x is None else x for x in state.get("prev", [])], np.float32)
        self._on = np.asarray(state.get("on", []), np.int32)
        self._pad(max(len(self._s), len(self._prev), len(self._on)))
