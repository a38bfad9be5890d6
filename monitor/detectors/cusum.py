"""Two-sided CUSUM on the standardised residual: catches bias and drift."""

from __future__ import annotations

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation, where_zero


class MeanShiftCusum(Detector):
    """Page's two-sided CUSUM with alarm hysteresis and a bias/drift verdict.

    Each side accumulates ``S = max(0, S + zc - k)`` where ``zc`` is ``z``
    clipped to ``±clip`` (so one spike cannot fire it) and ``k`` is raised by the
    observation's ``slack`` where given. The alarm goes on at
    ``S >= h`` and off once both sides are back at or below ``h_off``; while
    high, ``S`` is capped at ``cap * h`` so the alarm clears within a bounded
    time after the deviation ends. The onset estimate is the window where the
    alarming side last left zero; over that run the detector keeps the sums of
    a least-squares line so it can tell a step (``bias``) from a ramp
    (``drift``, onset extrapolated to where the ramp started).

    k=0.5, h=11.8 is the one-sided threshold that ANCHORS.md measures at about
    one false alarm per device-week at 1 Hz (two sides: about two).

    State per device: ``pos``, ``neg`` (float64), ``pos_start``, ``neg_start``
    (window index), ``alarm`` (bool), and run sums ``n``, ``sz``, ``stz``, ``stt``
    ... for the current alarming run.

    >>> det = MeanShiftCusum(h=5.0)
    >>> det.resize(1)
    >>> for w in range(12):
    ...     d = det.update(Observation(np.array([0]), np.array([w]), np.zeros(1), np.zeros(1),
    ...                                np.array([0.0 if w < 5 else 2.0]), np.ones(1)))
    >>> bool(d.alarm[0]), float(d.onset[0]), str(det.kind(np.array([0]))[0])
    (True, 5.0, 'bias')
    """

    name = "mean_shift"
    _state = {
        "pos": ("float64", 0.0), "neg": ("float64", 0.0),
        "pos_start": ("float64", 0.0), "neg_start": ("float64", 0.0),
        "alarm": ("bool", False),
        # least-squares sums over the current run of each side: n, sum z, sum t*z, where t counts from the run start
        "pos_n": ("float64", 0.0), "pos_sz": ("float64", 0.0), "pos_stz": ("float64", 0.0),
        "neg_n": ("float64", 0.0), "neg_sz": ("float64", 0.0), "neg_stz": ("float64", 0.0),
    }

    def __init__(self, k: float = 0.5, h: float = 11.8, h_off: float = 1.0, clip: float = 4.0,
                 cap: float = 2.0, drift_t: float = 4.0) -> None:
        if not (k >= 0 and h > 0 and 0 <= h_off < h and clip > k and cap >= 1):
            raise ValueError("MeanShiftCusum needs k >= 0, h > 0, 0 <= h_off < h, clip > k, cap >= 1")
        self.k, self.h, self.h_off, self.clip, self.cap, self.drift_t = k, h, h_off, clip, cap, drift_t
        super().__init__()

    def _side(self, name: str, d: np.ndarray, x: np.ndarray, window: np.ndarray, k) -> np.ndarray:
        s = getattr(self, f"_{name}")
        old = s[d]
        new = np.minimum(np.maximum(0.0, old + x - k), self.cap * self.h)
        starting = (old == 0.0) & (new > 0.0)
        getattr(self, f"_{name}_start")[d[starting]] = window[starting]
        # the run sums are zeroed whenever the side is (below), so a run starting here adds to zeros
        n_all, sz_all, stz_all = (getattr(self, f"_{name}_{k}") for k in ("n", "sz", "stz"))
        n, sz, stz = n_all[d], sz_all[d], stz_all[d]
        alive = new > 0.0
        n_all[d] = where_zero(alive, n + 1)
        sz_all[d] = where_zero(alive, sz + x)
        stz_all[d] = where_zero(alive, stz + n * x)
        s[d] = new
        return new

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        zc = np.clip(obs.z, -self.clip, self.clip)
        k = self.k if obs.slack is None else self.k + obs.slack
        pos = self._side("pos", d, zc, obs.window, k)
        neg = self._side("neg", d, -zc, obs.window, k)
        score = np.maximum(pos, neg)
        was = self._alarm[d]
        alarm = np.where(was, score > self.h_off, score >= self.h)
        self._alarm[d] = alarm
        onset = np.where(pos >= neg, self._pos_start[d], self._neg_start[d])
        return Detection(alarm=alarm, score=score, onset=onset.astype(np.float64))

    def sides(self, devices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positive and negative CUSUM statistics of these devices."""
        return self._pos[devices], self._neg[devices]

    def starts(self, devices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window where each side's current run began."""
        return self._pos_start[devices], self._neg_start[devices]

    def _fit(self, devices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        up = self._pos[devices] >= self._neg[devices]
        n = np.where(up, self._pos_n[devices], self._neg_n[devices])
        sz = np.where(up, self._pos_sz[devices], self._neg_sz[devices])
        stz = np.where(up, self._pos_stz[devices], self._neg_stz[devices])
        st = n * (n - 1) / 2.0
        stt = (n - 1) * n * (2 * n - 1) / 6.0
        var_t = stt - st * st / np.maximum(n, 1)
        slope = np.divide(stz - st * sz / np.maximum(n, 1), var_t, out=np.zeros_like(n), where=var_t > 0)
        se = np.divide(1.0, np.sqrt(var_t), out=np.full_like(n, np.inf), where=var_t > 0)
        intercept = np.divide(sz - slope * st, n, out=np.zeros_like(n), where=n > 0)
        return n, slope, se, intercept

    def kind(self, devices: np.ndarray) -> np.ndarray:
        """``'drift'`` where the alarming run is a significant ramp, else ``'bias'``."""
        n, slope, se, _ = self._fit(devices)
        drift = (n >= 8) & (slope / se >= self.drift_t)
        return np.where(drift, "drift", "bias")

    def ramp_onset(self, devices: np.ndarray) -> np.ndarray:
        """For a ramp: the window where the fitted line crosses zero (before the run began)."""
        n, slope, _, intercept = self._fit(devices)
        up = self._pos[devices] >= self._neg[devices]
        start = np.where(up, self._pos_start[devices], self._neg_start[devices])
        back = np.divide(intercept, slope, out=np.zeros_like(n), where=slope > 0)
        return start - np.clip(back, 0.0, None)
