"""CUSUM of the log-likelihood ratio for a variance increase: catches noise injection."""

from __future__ import annotations

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation


class VarianceCusum(Detector):
    """One-sided CUSUM for the residual's sigma growing by ``ratio``.

    It watches the differenced residual ``u = (z_t - z_{t-1}) / sqrt(2)``, which
    is N(0, 1) for an honest device and does not move when the level shifts
    (a bias is not noise). Per window it adds ``uc²/2 · (1 - 1/ratio²) - ln(ratio)``
    (the log-likelihood ratio of N(0, ratio²) against N(0, 1)), with ``uc``
    clipped to ``±clip``. Alarm at ``h``, off at ``h_off``, capped at ``cap * h``.

    State per device: ``s`` (float64), ``prev`` (last z), ``start`` (window), ``alarm`` (bool).

    >>> det = VarianceCusum()
    >>> det.resize(1)
    >>> rng = np.random.default_rng(1)
    >>> fired = [bool(det.update(Observation(np.array([0]), np.array([w]), np.zeros(1), np.zeros(1),
    ...          np.array([rng.normal() * (1 if w < 50 else 4)]), np.ones(1))).alarm[0]) for w in range(80)]
    >>> fired.index(True) > 50
    True
    """

    name = "noise"
    _state = {"s": ("float64", 0.0), "prev": ("float64", np.nan), "start": ("float64", 0.0),
              "alarm": ("bool", False)}

    def __init__(self, ratio: float = 2.0, h: float = 18.0, h_off: float = 1.0, clip: float = 4.0,
                 cap: float = 2.0) -> None:
        if not (ratio > 1 and h > 0 and 0 <= h_off < h and clip > 0 and cap >= 1):
            raise ValueError("VarianceCusum needs ratio > 1, h > 0, 0 <= h_off < h, clip > 0, cap >= 1")
        self.ratio, self.h, self.h_off, self.clip, self.cap = ratio, h, h_off, clip, cap
        super().__init__()

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        u = np.nan_to_num((obs.z - self._prev[d]) / np.sqrt(2.0))  # 0 for a device's first window
        self._prev[d] = obs.z
        zc = np.clip(u, -self.clip, self.clip)
        llr = 0.5 * zc * zc * (1.0 - 1.0 / self.ratio**2) - np.log(self.ratio)
        old = self._s[d]
        new = np.minimum(np.maximum(0.0, old + llr), self.cap * self.h)
        self._start[d] = np.where((old == 0.0) & (new > 0.0), obs.window, self._start[d])
        self._s[d] = new
        alarm = np.where(self._alarm[d], new > self.h_off, new >= self.h)
        self._alarm[d] = alarm
        return Detection(alarm=alarm, score=new, onset=self._start[d].copy())
