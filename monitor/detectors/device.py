"""Per-device scoring: residual against the consensus and the device's own history,
the detectors over it, and alert hysteresis (firing -> resolved)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.detectors.base import Detector, Observation
from monitor.detectors.cusum import MeanShiftCusum
from monitor.detectors.drift import SlowShiftCusum
from monitor.detectors.replay import ReplayDetector
from monitor.detectors.spike import SpikeDetector
from monitor.detectors.stuck import StuckDetector
from monitor.detectors.variance import VarianceCusum

#: alert types in the order they win when several detectors alarm at once
TYPES = ("stuck", "replay", "spike", "noise", "bias", "drift")
RECHECK = 8  # windows between looks at whether a device in a shift alarm copies another
DRIFT_STATE = ("drift", "step2", "behind")  # the drift carry's per-device state, in `_drift_state` order


@dataclass(frozen=True)
class DeviceEvents:
    """Alarm transitions of one window round, resolutions first (one entry an event)."""

    position: np.ndarray   # index into the devices passed to `DeviceMonitor.update`
    firing: np.ndarray     # bool: started firing (else resolved)
    types: np.ndarray      # alert type (str)
    onset: np.ndarray      # onset window (float)
    score: np.ndarray      # score: the live statistic when firing, the peak when resolved
    z: np.ndarray          # standardised residual of every device passed (0 while warming up)
    scale: np.ndarray | None = None  # each device's residual scale in value units (z * scale: the shift)
    slow: np.ndarray | None = None   # per event: a bias/drift verdict came from the slow CUSUM
    source: np.ndarray | None = None  # per event: the device a replay copies (index), -1 if none
    behind: np.ndarray | None = None  # per device passed: the drift its frozen offset missed, in z (None when off)


class DeviceMonitor:
    """Learns each device's offset and residual scale, scores windows, keeps alarms.

    The residual ``r = value - consensus`` of a device has its own mean (the
    calibration offset) and scale (its own noise, plus the consensus' noise
    which is given per window); both are learned by running averages with
    weight ``max(alpha, 1/n)``, the device is scored once ``warmup`` windows
    are known, and it learns only from windows that were scored clean (not in alarm, CUSUM below half its threshold,
    ``|z|`` below the clip): score before learning, never learn from what was
    flagged.

    With ``drift_memory`` > 0 (windows) it also learns how fast each learned offset
    moves once it is a steady average (its mean step, at most ``drift_max`` of the
    device's own noise per window): an honest sensor's calibration drifts, and where
    its own state stops the offset learning (an alarm, a CUSUM half way to one) the
    reading moves on by that drift, where it stands ``drift_z`` standard errors from
    zero. ``DeviceEvents.behind`` says how far, in z: the collusion scan reads
    the residual against the offset carried on by it, so that an honest drifter in
    alarm does not read ever further off and make a set with the next drifters of
    its group. The detectors here still score against the frozen offset.

    State per device: ``n``, ``mean``, ``var`` (residual statistics), ``firing``,
    ``type`` (index in TYPES), ``onset``, ``peak``, ``sign`` (direction of a bias or drift
    alarm), ``drift``, ``step2`` and ``behind`` (the offset's drift per window, the mean square of
    its steps, and how far the drift has carried the device while the offset did not learn), plus
    each detector's.
    """

    def __init__(self, warmup: int = 60, alpha: float = 0.002, min_scale: float = 1e-6,
                 cusum: MeanShiftCusum | None = None, variance: VarianceCusum | None = None,
                 spike: SpikeDetector | None = None, stuck: StuckDetector | None = None,
                 replay: ReplayDetector | None = None, slow: SlowShiftCusum | None = None,
                 stuck_run: int = 3, noise_share: float = 0.3, baseline_slack: float = 2.0,
                 drift_memory: float = 0.0, drift_max: float = 0.0, drift_z: float = 2.0) -> None:
        if (warmup < 2 or not (0 < alpha < 1) or min_scale <= 0 or stuck_run < 2 or not 0 < noise_share <= 1
                or baseline_slack < 0 or drift_memory < 0 or drift_max < 0 or drift_z < 0):
            raise ValueError("DeviceMonitor needs warmup >= 2, 0 < alpha < 1, min_scale > 0, stuck_run >= 2, "
                             "0 < noise_share <= 1, baseline_slack >= 0, drift_memory >= 0, drift_max >= 0, drift_z >= 0")
        self.warmup, self.alpha, self.min_scale = warmup, alpha, min_scale
        self.stuck_run, self.noise_share, self.baseline_slack = stuck_run, noise_share, baseline_slack
        self.drift_memory, self.drift_max, self.drift_z = drift_memory, drift_max, drift_z
        self.cusum = cusum or MeanShiftCusum()
        self.variance = variance or VarianceCusum()
        self.spike = spike or SpikeDetector()
        self.stuck = stuck or StuckDetector()
        self.replay = replay or ReplayDetector()
        self.slow = slow or SlowShiftCusum()
        self._n = np.zeros(0, np.int64)
        self._mean = np.zeros(0)
        self._var = np.zeros(0)
        self._firing = np.zeros(0, bool)
        self._type = np.zeros(0, np.int8)
        self._onset = np.zeros(0)
        self._peak = np.zeros(0)
        self._sign = np.zeros(0, np.int8)
        self._drift = np.zeros(0)   # the offset's drift per window (its mean step while it learns)
        self._step2 = np.zeros(0)   # the mean square of those steps (how sure the drift is)
        self._behind = np.zeros(0)  # how far that drift has carried the device while its offset did not learn

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return (self.cusum, self.variance, self.spike, self.stuck, self.replay, self.slow)

    def resize(self, n: int) -> None:
        if n <= len(self._n):
            return
        size = max(n, 2 * len(self._n))
        grow = lambda a, v: np.r_[a, np.full(size - len(a), v, dtype=a.dtype)]  # noqa: E731
        self._n, self._mean, self._var = grow(self._n, 0), grow(self._mean, 0.0), grow(self._var, 0.0)
        self._firing, self._type = grow(self._firing, False), grow(self._type, 0)
        self._onset, self._peak, self._sign = grow(self._onset, 0.0), grow(self._peak, 0.0), grow(self._sign, 0)
        if self.drift_memory > 0:  # (kept only when asked for: 24 bytes a device)
            self._drift, self._step2, self._behind = (grow(a, 0.0) for a in self._drift_state())
        for det in self.detectors:
            det.resize(size)

    @property
    def firing(self) -> np.ndarray:
        """Bool per device index: currently in alarm."""
        return self._firing

    def direction(self, devices: np.ndarray) -> np.ndarray:
        """Per device: +1 or -1 while in a bias or drift alarm raised for reading high or low, else 0."""
        return self._sign[devices]

    def scale(self, devices: np.ndarray) -> np.ndarray:
        """Learned own-noise scale (value units) of these devices."""
        return np.sqrt(np.maximum(self._var[devices], 0.0))

    def learned(self, devices: np.ndarray) -> np.ndarray:
        """How many windows each device has learned from."""
        return self._n[devices]

    def verdict(self, device: int) -> tuple[str, float, float]:
        """The current alarm of one device: type, onset window and peak score."""
        return TYPES[int(self._type[device])], float(self._onset[device]), float(self._peak[device])

    def offset(self, devices: np.ndarray) -> np.ndarray:
        """Learned calibration offset (mean residual against the consensus, in the unit it was learned in)."""
        return self._mean[devices]

    def shift_offsets(self, devices: np.ndarray, delta: np.ndarray) -> None:
        """Move these devices' learned offsets by ``delta`` (the pipeline moves a group's offsets
        together: the consensus moves with them and no residual changes)."""
        self._mean[devices] += delta

    def update(self, devices: np.ndarray, window: np.ndarray, value: np.ndarray,
               consensus: np.ndarray, consensus_var: np.ndarray | None = None,
               learn: np.ndarray | None = None, unit: np.ndarray | None = None,
               peers: np.ndarray | None = None) -> DeviceEvents:
        """Score one window of these devices against their group's consensus.

        ``consensus_var`` is the variance of the consensus each device is compared
        with (it grows when fewer devices make it up): the residual's scale is
        the device's own noise and that, added. ``learn`` (bool per device, default
        all) says where the consensus can be learned from at all. ``unit`` (per
        device, default 1) is the unit residuals are learned in: the group's
        current spread, so that a group growing noisier as a whole (pollution
        episodes) does not look like every device misbehaving. ``peers`` (a label per
        device, default none) says which devices measure the same thing: a device whose
        readings start to shift is checked for copying one of its peers (a replay).
        """
        d = devices
        u = np.ones(len(d)) if unit is None else unit
        r = (value - consensus) / u
        cvar = np.zeros(len(d)) if consensus_var is None else consensus_var / (u * u)
        n = self._n[d]
        warm = n >= self.warmup
        scale = np.maximum(np.sqrt(self._var[d] + cvar), self.min_scale * (1.0 + np.abs(consensus) / u))
        z = np.where(warm, (r - self._mean[d]) / scale, 0.0)
        # how much less sure the learned offset is than a steady one, in sigmas: 1/sqrt of the windows
        # it averages less 1/sqrt of the exponential average's 2/alpha - 1 (what the CUSUMs' reference
        # values were chosen for), times ``baseline_slack``
        steady = 2.0 / self.alpha - 1.0
        slack = self.baseline_slack * (1.0 / np.sqrt(np.minimum(n[warm], steady)) - 1.0 / np.sqrt(steady))
        events = self._score(d[warm], window[warm], value[warm], consensus[warm], z[warm], (scale * u)[warm],
                             slack, None if peers is None else (d, peers, peers[warm]))
        # learn (every window while warming up, then only clean ones)
        pos, neg = self.cusum.sides(d)
        clean = ~warm | (~self._firing[d] & (np.maximum(pos, neg) < 0.5 * self.cusum.h)
                         & (np.abs(z) < self.cusum.clip))
        own = clean  # what the device's own state allows (not the group's consensus or a set it is in)
        if learn is not None:
            clean = clean & learn
        self._learn(d[clean], r[clean], cvar[clean])
        behind = None
        if self.drift_memory > 0:  # where its own state stopped the offset learning, the device drifted on
            frozen = d[warm & ~own]
            self._behind[frozen] += self._sure_drift(frozen)
            behind = np.where(warm, self._behind[d] / scale, 0.0)
        idx = np.flatnonzero(warm)
        return DeviceEvents(position=idx[events.position], firing=events.firing, types=events.types,
                            onset=events.onset, score=events.score, z=z, scale=scale * u, slow=events.slow,
                            source=events.source, behind=behind)

    def _learn(self, d: np.ndarray, r: np.ndarray, cvar: np.ndarray) -> None:
        """Running mean and own-noise variance with weight ``max(alpha, 1/n)``: exact
        averages while few windows are known, an exponential average after ``1/alpha``.
        The consensus' own variance is taken out of each squared deviation."""
        n = self._n[d] + 1
        a = np.maximum(self.alpha, 1.0 / n)
        delta = r - self._mean[d]
        self._mean[d] += a * delta
        self._var[d] = np.maximum((1 - a) * self._var[d] + a * ((1 - a) * delta * delta - cvar), 0.0)
        self._n[d] = n
        if self.drift_memory > 0:  # the offset's mean step, once it is a steady average (bounded);
            # while it learns again it catches up with what it missed at its own rate
            steady = a <= self.alpha
            b = self._drift_weight(n)
            cap = self.drift_max * np.sqrt(self._var[d])
            step = a * delta
            self._drift[d] = np.where(steady, np.clip(self._drift[d] + b * (step - self._drift[d]), -cap, cap), 0.0)
            self._step2[d] = np.where(steady, self._step2[d] + b * (step * step - self._step2[d]), 0.0)
            self._behind[d] *= 1.0 - a

    def _drift_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The per-device arrays of the drift carry (empty unless ``drift_memory`` > 0)."""
        return self._drift, self._step2, self._behind

    def _drift_weight(self, n: np.ndarray) -> np.ndarray:
        """Weight of the newest step in the drift's average: an exact average of the steps since the
        offset became steady, then exponential with memory ``drift_memory``."""
        return np.maximum(1.0 / self.drift_memory, 1.0 / np.maximum(n - 1.0 / self.alpha, 1.0))

    def _sure_drift(self, d: np.ndarray) -> np.ndarray:
        """The learned drift where it stands ``drift_z`` standard errors (of its average of steps) from
        zero, else 0: an offset that wanders (real stations' offsets move with the seasons) has no drift
        to carry a frozen device on by."""
        drift = self._drift[d]
        var = np.maximum(self._step2[d] - drift * drift, 0.0) * self._drift_weight(self._n[d])
        return np.where(drift * drift > self.drift_z ** 2 * var, drift, 0.0)

    def _score(self, d, window, value, consensus, z, scale, slack=None, peers=None) -> DeviceEvents:
        obs = Observation(devices=d, window=window, value=value, consensus=consensus, z=z, scale=scale, slack=slack)
        mean = self.cusum.update(obs)
        var = self.variance.update(obs)
        spike = self.spike.update(obs)
        stuck = self.stuck.update(obs)
        replay = self.replay.update(obs)
        slow = self.slow.update(obs)
        shift = mean.alarm | slow.alarm
        # a shift is typed by what explains it: a value that stopped changing while the consensus
        # moved (stuck), or a residual whose spread grew (noise: the level-free variance CUSUM has
        # gathered a good part of its evidence; a bias does not move it)
        stuck_alarm = stuck.alarm | (shift & self.stuck.evident(d, self.stuck_run))
        # the mean shift: from the main CUSUM when it alarms, else from the slow one
        main = mean.alarm
        # noise only when the alarm starts (a bias already reported is not re-typed), and on the variance
        # evidence beyond what one step of the size measured explains (its jump enters one differenced residual)
        was = self._firing[d]
        noise_alarm = var.alarm.copy()
        starting = np.flatnonzero(shift & ~was)
        if len(starting):  # (rare: the step's size is measured only where a shift alarm starts)
            jump = self._jump_evidence(d[starting], window[starting], main[starting])
            noise_alarm[starting] |= var.score[starting] - jump >= self.noise_share * self.variance.h
        drift, ramp_onset = self._shift_kind(d, main, shift & ~main)
        shift_score = np.where(main, mean.score, slow.score)
        shift_onset = np.where(main, mean.onset, slow.onset)
        # candidates in TYPES order: stuck, replay, spike, noise, bias, drift
        alarms = np.stack([stuck_alarm, replay.alarm, spike.alarm, noise_alarm, shift & ~drift, shift & drift])
        scores = np.stack([stuck.score, replay.score, spike.score, var.score, shift_score, shift_score])
        onsets = np.stack([stuck.onset, replay.onset, spike.onset, var.onset, shift_onset, ramp_onset])
        any_alarm = alarms.any(axis=0)
        first = np.argmax(alarms, axis=0)
        source = self._copies(d, window, was, first, alarms, scores, onsets, peers) if peers is not None \
            else np.full(len(d), -1)
        cols = np.arange(len(d))
        old_type = self._type[d]
        # a more specific verdict found later (stuck, replay, noise; not a spike) replaces the
        # current one: resolve it and fire the new one
        upgrade = was & any_alarm & (first < old_type) & (first != TYPES.index("spike"))
        fired = np.flatnonzero(any_alarm & (~was | upgrade))
        resolved = np.flatnonzero((~any_alarm & was) | upgrade)
        peak_before = self._peak[d].copy()
        onset_before = self._onset[d].copy()
        self._type[d[fired]] = first[fired]
        self._onset[d[fired]] = onsets[first[fired], fired]
        live = scores[self._type[d], cols]
        fresh = ~was | upgrade
        self._peak[d] = np.where(any_alarm, np.where(fresh, live, np.maximum(peak_before, live)), 0.0)
        self._firing[d] = any_alarm
        self._sign[d[resolved]] = 0
        if len(fired):  # the side of the shift detector that raised a bias or drift alarm
            f = d[fired]
            (pm, nm), (ps, ns) = self.cusum.sides(f), self.slow.sides(f)
            up = np.where(main[fired], pm >= nm, ps >= ns)
            shifted = self._type[f] >= TYPES.index("bias")
            self._sign[f] = np.where(shifted, np.where(up, 1, -1), 0)
        types = np.asarray(TYPES, dtype=object)
        return DeviceEvents(
            position=np.r_[resolved, fired],
            firing=np.r_[np.zeros(len(resolved), bool), np.ones(len(fired), bool)],
            types=np.r_[types[old_type[resolved]], types[self._type[d[fired]]]],
            onset=np.r_[onset_before[resolved], self._onset[d[fired]]],
            score=np.r_[peak_before[resolved], live[fired]], z=z,
            slow=np.r_[np.zeros(len(resolved), bool), ~main[fired]],
            source=np.r_[np.full(len(resolved), -1), source[fired]],
        )

    def _copies(self, d, window, was, first, alarms, scores, onsets, peers) -> np.ndarray:
        """Readings that start to shift (or grow noisy) may be re-sent: another device's or their own.
        Such alarms become ``replay`` (``first``, ``scores`` and ``onsets`` are updated in place); returns
        the device each copies (-1: none, or itself). A shift already alerted is looked at again every
        ``RECHECK`` windows (a ragged copy may share too few pairs when its shift is first flagged)."""
        every, labels, label = peers
        source = np.full(len(d), -1)
        shifted = alarms.any(axis=0) & (first >= TYPES.index("noise"))
        again = was & (self._type[d] >= TYPES.index("noise")) & (window % RECHECK == 0)
        asked = np.flatnonzero(shifted & (~was | again))
        if not len(asked):
            return source
        # each device's peers by binary search in the labels sorted once (the pipeline's come sorted)
        order = np.arange(len(labels)) if np.all(labels[:-1] <= labels[1:]) else np.argsort(labels, kind="stable")
        ranked = labels[order]
        lo, hi = np.searchsorted(ranked, label[asked], "left"), np.searchsorted(ranked, label[asked], "right")
        replay = TYPES.index("replay")
        for i, a, b in zip(asked.tolist(), lo.tolist(), hi.tolist()):
            src, shared = self.replay.source(int(d[i]), every[order[a:b]])
            if src >= 0:
                first[i], source[i] = replay, -1 if src == d[i] else src
                scores[replay, i], onsets[replay, i] = shared, onsets[3:, i][alarms[3:, i]][0]
        return source

    def _jump_evidence(self, d: np.ndarray, window: np.ndarray, main: np.ndarray) -> np.ndarray:
        """What the variance CUSUM gains from the jump of a step of the size the shift CUSUM in alarm
        (the main one where ``main``, else the slow one) has measured over its run: the step's mean
        ``(S + k * run) / run`` enters one differenced residual. A gross step alone gives the variance
        CUSUM up to ~0.3 of its threshold, which is not evidence of noise."""
        step = np.zeros(len(d))
        for det, sel in ((self.cusum, np.flatnonzero(main)), (self.slow, np.flatnonzero(~main))):
            (pos, neg), (pos_start, neg_start) = det.sides(d[sel]), det.starts(d[sel])
            up = pos >= neg
            run = np.maximum(window[sel] - np.where(up, pos_start, neg_start), 1.0)
            step[sel] = (np.where(up, pos, neg) + det.k * run) / run
        u = np.minimum(step / np.sqrt(2.0), self.variance.clip)
        r = self.variance.ratio
        return np.maximum(0.5 * u * u * (1.0 - 1.0 / r ** 2) - np.log(r), 0.0)

    def _shift_kind(self, d: np.ndarray, main: np.ndarray, slow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ramp (drift) or step verdict and ramp onset of the shifts in alarm, from the main CUSUM where
        it alarms (``main``) or the slow one (``slow``); False and 0 for every other device."""
        drift, ramp_onset = np.zeros(len(d), bool), np.zeros(len(d))
        for det, sel in ((self.cusum, np.flatnonzero(main)), (self.slow, np.flatnonzero(slow))):
            drift[sel] = det.kind(d[sel]) == "drift"
            ramp_onset[sel] = det.ramp_onset(d[sel])
        return drift, ramp_onset

    def reset(self, devices: np.ndarray) -> None:
        """Forget everything learned about these devices (they warm up again, out of alarm)."""
        for a in (self._n, self._mean, self._var, self._firing, self._type, self._onset, self._peak, self._sign,
                  *(self._drift_state() if self.drift_memory > 0 else ())):
            a[devices] = 0
        for det in self.detectors:
            det.reset(devices)

    def state_dict(self) -> dict:
        return {
            "n": self._n.tolist(), "mean": self._mean.tolist(), "var": self._var.tolist(),
            "firing": self._firing.tolist(), "type": self._type.tolist(), "onset": self._onset.tolist(),
            "peak": self._peak.tolist(), "sign": self._sign.tolist(),
            "detectors": {det.name: det.state_dict() for det in self.detectors},
            **({k: a.tolist() for k, a in zip(DRIFT_STATE, self._drift_state())} if self.drift_memory > 0 else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        self._n = np.asarray(state["n"], np.int64)
        self._mean = np.asarray(state["mean"], np.float64)
        self._var = np.asarray(state["var"], np.float64)
        self._firing = np.asarray(state["firing"], bool)
        self._type = np.asarray(state["type"], np.int8)
        self._onset = np.asarray(state["onset"], np.float64)
        self._peak = np.asarray(state["peak"], np.float64)
        self._sign = np.asarray(state.get("sign", np.zeros(len(self._n))), np.int8)
        if self.drift_memory > 0:
            self._drift, self._step2, self._behind = (np.asarray(state.get(k, np.zeros(len(self._n))), np.float64)
                                                      for k in DRIFT_STATE)
        for det in self.detectors:
            det.load_state_dict(state["detectors"][det.name])
