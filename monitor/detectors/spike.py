"""Isolated large residuals that come straight back: catches spikes."""

from __future__ import annotations

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation

HONEST_WILD = 0.0455  # P(|z| > 2) for N(0, 1)


class SpikeDetector(Detector):
    """A spike is a window with ``|z| > threshold`` whose next window is back
    under ``threshold / 2`` (so a level shift is not a spike: it is a bias).
    Smaller spikes count in pairs: two windows past ``pair_z`` that each come
    straight back under ``pair_z / 2``, at most ``pair_windows`` apart, while
    the device is otherwise calm (under ``calm`` of its recent windows past
    2 sigmas, against 4.6% for honest noise: a device that became noisy is the
    variance detector's case, not spiking). Honest noise
    almost never does this: one such window is a few in 100,000, two close
    together a few in 10**9. A spike is called one window late, once the
    return is seen; the alarm stays on until ``quiet`` windows pass without
    another.

    State per device: ``prev`` (last z), ``last`` (window of the last spike),
    ``first`` (window of the episode's first spike), ``peak`` (largest |z|),
    ``alarm``, ``small`` (window of the last small spike) and ``wild`` (running
    share of windows with ``|z| > 2``, over ``memory`` windows).

    >>> det = SpikeDetector(threshold=8, quiet=3)
    >>> det.resize(1)
    >>> def run(zs):
    ...     return [bool(det.update(Observation(np.array([0]), np.array([w]), np.zeros(1), np.zeros(1),
    ...             np.array([float(z)]), np.ones(1))).alarm[0]) for w, z in enumerate(zs)]
    >>> run([0, 12, 0, 0, 0, 0, 9, 9, 9])      # one huge spike; a level shift is none
    [False, False, True, True, True, False, False, False, False]
    >>> det = SpikeDetector(threshold=8, quiet=3)
    >>> det.resize(1)
    >>> run([0, 6, 0, 0, 0, 0, 0, 6, 0, 0])    # two smaller ones close together
    [False, False, False, False, False, False, False, False, True, True]
    """

    name = "spike"
    _state = {"prev": ("float64", 0.0), "last": ("float64", -np.inf), "first": ("float64", 0.0),
              "peak": ("float64", 0.0), "alarm": ("bool", False), "small": ("float64", -np.inf),
              "wild": ("float64", HONEST_WILD)}

    def __init__(self, threshold: float = 8.0, quiet: int = 10, pair_z: float = 4.5, pair_windows: int = 120,
                 calm: float = 0.12, memory: int = 64) -> None:
        if not (threshold > 0 and quiet >= 1 and 0 < pair_z <= threshold and pair_windows >= 1 and 0 < calm <= 1
                and memory >= 1):
            raise ValueError("SpikeDetector needs threshold > 0, quiet >= 1, 0 < pair_z <= threshold, "
                             "pair_windows >= 1, 0 < calm <= 1 and memory >= 1")
        self.threshold, self.quiet = threshold, quiet
        self.pair_z, self.pair_windows, self.calm, self.memory = pair_z, pair_windows, calm, memory
        super().__init__()

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        prev = np.abs(self._prev[d])
        self._prev[d] = obs.z
        back = np.abs(obs.z)
        at = obs.window - 1
        big = (prev > self.threshold) & (back < 0.5 * self.threshold)
        small = ~big & (prev > self.pair_z) & (back < 0.5 * self.pair_z) & (self._wild[d] < self.calm)
        pair = small & (at - self._small[d] <= self.pair_windows)
        self._wild[d] += ((back > 2.0) - self._wild[d]) / self.memory
        spike = big | pair
        was = self._alarm[d]
        start = np.where(pair & ~big, self._small[d], at)
        self._small[d] = np.where(small, at, self._small[d])
        self._first[d] = np.where(spike & ~was, start, self._first[d])
        self._peak[d] = np.where(spike, np.maximum(np.where(was, self._peak[d], 0.0), prev), self._peak[d])
        self._last[d] = np.where(spike, at, self._last[d])
        alarm = spike | (was & (obs.window - self._last[d] <= self.quiet))
        self._alarm[d] = alarm
        return Detection(alarm=alarm, score=np.where(alarm, self._peak[d], prev), onset=self._first[d].copy())
