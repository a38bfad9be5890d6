"""A device whose value does not change while its group's consensus does."""

from __future__ import annotations

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation


class StuckDetector(Detector):
    """Alarm when the raw value has stayed within ``tolerance`` for ``min_run``
    windows while the consensus moved by at least ``min_move`` of the device's
    residual scale; off as soon as the value changes.

    State per device: ``value`` (last raw value), ``run`` (windows unchanged),
    ``ref`` (consensus when the run began), ``move`` (largest consensus move
    since, in scales), ``start`` (window the run began), ``alarm``, ``runs``
    (how many runs of repeated values it has shown).

    >>> det = StuckDetector(min_run=3, min_move=2)
    >>> det.resize(1)
    >>> obs = lambda w, v, c: Observation(np.array([0]), np.array([w]), np.array([v]),
    ...                                   np.array([c]), np.zeros(1), np.ones(1))
    >>> [bool(det.update(obs(w, 5.0, float(w))).alarm[0]) for w in range(5)]
    [False, False, False, True, True]
    """

    name = "stuck"
    _state = {"value": ("float64", np.nan), "run": ("int64", 0), "ref": ("float64", 0.0),
              "move": ("float64", 0.0), "start": ("float64", 0.0), "alarm": ("bool", False),
              "runs": ("int32", 0)}

    def __init__(self, min_run: int = 10, min_move: float = 3.0, tolerance: float = 0.0) -> None:
        if not (min_run >= 2 and min_move >= 0 and tolerance >= 0):
            raise ValueError("StuckDetector needs min_run >= 2, min_move >= 0, tolerance >= 0")
        self.min_run, self.min_move, self.tolerance = min_run, min_move, tolerance
        super().__init__()

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        same = np.abs(obs.value - self._value[d]) <= self.tolerance  # False if last is NaN
        run = np.where(same, self._run[d] + 1, 0)
        self._ref[d] = np.where(same, self._ref[d], obs.consensus)
        self._start[d] = np.where(same, self._start[d], obs.window)
        moved = np.abs(obs.consensus - self._ref[d]) / np.maximum(obs.scale, 1e-12)
        self._move[d] = np.where(same, np.maximum(self._move[d], moved), 0.0)
        self._run[d] = run
        self._runs[d] += (run == 1)
        self._value[d] = obs.value
        alarm = (run >= self.min_run) & (self._move[d] >= self.min_move)
        self._alarm[d] = alarm
        return Detection(alarm=alarm, score=run.astype(np.float64), onset=self._start[d].copy())

    def evident(self, devices: np.ndarray, min_run: int = 3, min_move: float = 1.0) -> np.ndarray:
        """Less is enough when another detector already sees the device deviate: unchanged for
        ``self.min_run`` windows, or for ``min_run`` while the consensus moved by ``min_move`` scales
        or the device never repeated a value before (readings with noise do not repeat exactly;
        a coarsely quantised sensor does, and has to show the longer run).

        >>> det = StuckDetector(min_run=10)
        >>> det.resize(1)
        >>> obs = lambda w, v: Observation(np.array([0]), np.array([w]), np.array([v]), np.zeros(1), np.zeros(1), np.ones(1))
        >>> _ = [det.update(obs(w, 0.1 * w)) for w in range(5)]
        >>> _ = [det.update(obs(w, 9.0)) for w in range(5, 9)]  # frozen for 3 windows, the consensus still
        >>> bool(det.evident(np.array([0]))[0])
        True
        """
        run = self._run[devices]
        fresh = self._runs[devices] <= 1
        return (run >= self.min_run) | ((run >= min_run) & ((self._move[devices] >= min_move) | fresh))
