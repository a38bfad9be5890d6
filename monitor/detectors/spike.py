"""Isolated huge residuals that come straight back: catches spikes."""

from __future__ import annotations

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation


class SpikeDetector(Detector):
    """A spike is a window with ``|z| > threshold`` whose next window is back
    under ``threshold / 2`` (so a level shift is not a spike: it is a bias).
    It is called one window late, once the return is seen. The alarm stays on
    until ``quiet`` windows pass without another spike.

    State per device: ``prev`` (last z), ``last`` (window of the last spike),
    ``first`` (window of the episode's first spike), ``peak`` (largest |z|), ``alarm``.

    >>> det = SpikeDetector(threshold=8, quiet=3)
    >>> det.resize(1)
    >>> zs = [0, 12, 0, 0, 0, 0, 9, 9, 9]
    >>> [bool(det.update(Observation(np.array([0]), np.array([w]), np.zeros(1), np.zeros(1),
    ...       np.array([float(z)]), np.ones(1))).alarm[0]) for w, z in enumerate(zs)]
    [False, False, True, True, True, False, False, False, False]
    """

    name = "spike"
    _state = {"prev": ("float64", 0.0), "last": ("float64", -np.inf), "first": ("float64", 0.0),
              "peak": ("float64", 0.0), "alarm": ("bool", False)}

    def __init__(self, threshold: float = 8.0, quiet: int = 10) -> None:
        if not (threshold > 0 and quiet >= 1):
            raise ValueError("SpikeDetector needs threshold > 0 and quiet >= 1")
        self.threshold, self.quiet = threshold, quiet
        super().__init__()

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        prev = np.abs(self._prev[d])
        self._prev[d] = obs.z
        spike = (prev > self.threshold) & (np.abs(obs.z) < 0.5 * self.threshold)
        at = obs.window - 1
        was = self._alarm[d]
        self._first[d] = np.where(spike & ~was, at, self._first[d])
        self._peak[d] = np.where(spike, np.maximum(np.where(was, self._peak[d], 0.0), prev), self._peak[d])
        self._last[d] = np.where(spike, at, self._last[d])
        alarm = spike | (was & (obs.window - self._last[d] <= self.quiet))
        self._alarm[d] = alarm
        return Detection(alarm=alarm, score=np.where(alarm, self._peak[d], prev), onset=self._first[d].copy())
