"""The detection pipeline: decoded readings in, alerts out. Pure: no I/O, no clock.

The same `Pipeline` runs under the in-memory demo, a file replay and the Kafka
service; its output depends on the order of readings within each group, never
on how they were cut into micro-batches.

Per closed window of a group: robust consensus over the trusted devices,
each corrected by its learned calibration offset (uncertain when too few) → each device's standardised residual through the
per-device detectors (score first, learn only from what passed) → the
collusion detector (a subset scan over the group's residual means) → the guarded River
learner and its unguarded shadow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from monitor.alerts import alert_id, make_alert
from monitor.collusion import TAKEOVER_GAP, CollusionDetector, CollusionEvent, CollusionSet
from monitor.config import DetectionSettings
from monitor.consensus import robust_consensus
from monitor.detectors import MeanShiftCusum, ReplayDetector, SlowShiftCusum, SpikeDetector, StuckDetector, VarianceCusum
from monitor.detectors.device import TYPES, DeviceMonitor
from monitor.ingest.decode import DecodedBatch
from monitor.learner import GroupLearner
from monitor.level import OffsetSnapshots
from monitor.registry import Registry
from monitor.reputation import BetaReputation
from monitor.restarts import RestartTracker
from monitor.scan import row_median
from monitor.schema import Alert
from monitor.windows import WindowAligner, WindowRound

HISTORY = 72          # certain consensus values kept per group (covers two middle memories)
ANCHOR_MAX_AGE = 240  # windows a pre-jump consensus is trusted as the reference
STICKY = 16           # windows a take-over check's call of which camp is honest stands (twice the shortest memory)
PULL_MARGIN = 60      # windows after a set's hold that an alarm raised against its pull is held (a capped CUSUM's decay)

#: the types a ``device`` alert can carry: the detectors' verdicts and restarts (from sequence numbers)
DEVICE_ALERT_TYPES = TYPES + ("restart",)

DETECTOR_OF_TYPE = {"stuck": "StuckDetector", "replay": "ReplayDetector", "spike": "SpikeDetector",
                    "noise": "VarianceCusum", "bias": "MeanShiftCusum", "drift": "MeanShiftCusum"}


@dataclass
class Recording:
    """Per group and window: the consensus and the learners' forecasts (for the evaluation harness)."""

    group: list[int] = field(default_factory=list)
    window: list[int] = field(default_factory=list)
    consensus: list[float] = field(default_factory=list)   # NaN when uncertain
    plain_mean: list[float] = field(default_factory=list)  # mean of every reading, trusted or not
    guarded: list[float] = field(default_factory=list)     # guarded learner's forecast (before learning)
    shadow: list[float] = field(default_factory=list)      # unguarded shadow's forecast
    isolated: list[tuple[str, float]] = field(default_factory=list)  # (device, window start) it left the consensus
    #                                                                    as a member of a colluding set
    excluded: list[tuple[str, float]] = field(default_factory=list)  # the same for any reason: its own alarm,
    #                                                                  quarantine or a set


@dataclass
class StepResult:
    """What one micro-batch produced, and counts for the metrics."""

    alerts: list[Alert] = field(default_factory=list)
    readings: int = 0
    late: int = 0
    windows: int = 0
    uncertain_windows: int = 0
    max_event_ts: float = -math.inf
    collusion_holds: dict[str, int] = field(default_factory=dict)  # held sets by outcome (`monitor.collusion.OUTCOMES`)


def infer_window_seconds(device_ids: list[str], ts: np.ndarray) -> float:
    """The typical spacing between a device's successive readings (median of positive gaps).

    >>> infer_window_seconds(["a", "b", "a", "b", "a"], np.array([0.0, 1.0, 60.0, 61.0, 120.0]))
    60.0
    """
    if len(ts) < 2:
        raise ValueError("need at least two readings to infer the window length")
    codes = np.unique(np.asarray(device_ids, dtype=object), return_inverse=True)[1]
    order = np.lexsort((ts, codes))
    same = codes[order][1:] == codes[order][:-1]
    gaps = np.diff(ts[order])[same]
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        raise ValueError("cannot infer the window length: no device sent two readings at different times")
    return float(np.median(gaps))


class Pipeline:
    """Stateful detection over a stream of decoded micro-batches."""

    def __init__(self, settings: DetectionSettings, window_seconds: float | None = None,
                 record: bool = False) -> None:
        self.settings = settings
        self.recording = Recording() if record else None
        self._isolated_before: set[int] = set()
        self._excluded_before: set[int] = set()
        self.window_seconds = window_seconds or settings.window_seconds
        if self.window_seconds is None:
            raise ValueError("detection.window_seconds is not set and was not inferred")
        s = settings
        lateness = s.lateness_seconds if s.lateness_seconds is not None else self.window_seconds
        self.registry = Registry()
        self.aligner = WindowAligner(self.window_seconds, lateness)
        self.devices = DeviceMonitor(
            warmup=s.warmup, alpha=s.alpha or min(0.5, self.window_seconds / s.learn_seconds),
            drift_memory=s.collusion_drift_seconds / self.window_seconds,
            drift_max=s.collusion_drift_max * self.window_seconds / 86400.0,
            drift_z=s.collusion_drift_z,
            cusum=MeanShiftCusum(k=s.cusum_k, h=s.cusum_h, h_off=s.cusum_h_off, clip=s.clip),
            variance=VarianceCusum(ratio=s.noise_ratio, h=s.noise_h, h_off=s.cusum_h_off, clip=s.clip),
            spike=SpikeDetector(threshold=s.spike_z, quiet=s.spike_quiet, pair_z=min(s.spike_pair_z, s.spike_z),
                                pair_windows=s.spike_pair_windows),
            stuck=StuckDetector(min_run=s.stuck_min_run, min_move=s.stuck_min_move),
            replay=ReplayDetector(k=s.replay_k, capacity=s.replay_capacity, min_matches=s.replay_min_matches),
            slow=SlowShiftCusum(k=s.slow_k, h=s.slow_h, h_off=s.cusum_h_off, clip=s.clip),
            baseline_slack=s.baseline_slack,
        )
        self.collusion = CollusionDetector(
            min_members=s.collusion_min_members, max_fraction=s.collusion_max_fraction,
            threshold=s.collusion_threshold, memory=s.collusion_memory, winsor=s.collusion_winsor, clip=s.clip,
            join_z=s.collusion_join_z, extend_z=s.collusion_extend_z,
            confirm=max(10, round(s.collusion_confirm_seconds / self.window_seconds)),
            tolerance=s.collusion_tolerance, homogeneity=s.collusion_homogeneity, cooldown=s.collusion_cooldown,
            penalty=s.collusion_penalty, outsiders=s.collusion_outsiders,
            recur=round(s.collusion_recur_seconds / self.window_seconds), gap=s.collusion_gap,
            recheck=s.collusion_recheck, measure_faded=s.collusion_recur_measure, camp=s.collusion_camp,
            mimic=s.collusion_mimic)
        self.reputation = BetaReputation(forget=s.reputation_forget, good_z=s.reputation_good_z,
                                         quarantine_below=s.quarantine_below, readmit_above=s.readmit_above)
        # offsets from before a set's onset, to restore the level its pull taught the others (see _restore_level)
        self.levels = OffsetSnapshots(every=s.offset_restore_windows) if s.offset_restore_windows > 0 else None
        self._learners: dict[int, GroupLearner] = {}
        self._uncertain: set[int] = set()
        self._bursts: dict[int, dict] = {}
        self._sybil = np.zeros(0, bool)  # per device: first seen in a burst of new ids that raised input/sybil
        self._regressing: set[int] = set()
        self._spread = np.zeros(0)
        self._spread_n = np.zeros(0, np.int64)
        self._out_run = np.zeros(0, np.int64)  # per group: windows in a row with most devices out (see _relearn)
        self._relearning: dict[int, int] = {}   # group -> window it was learned afresh (until warm again)
        # per group: the last HISTORY certain consensus values and their windows (for the continuity check)
        self._hist = np.full((0, HISTORY), np.nan)
        self._hist_w = np.full((0, HISTORY), -1, np.int64)
        # group -> [consensus before a suspected take-over, its window(, direction of the camp called honest,
        # window of that call)] (see _took_over)
        self._anchor: dict[int, list[float]] = {}
        self.restarts = RestartTracker()
        self._restarted: dict[int, dict] = {}  # device -> open restart alert (plain numbers and strings)
        self._pulled: dict[int, dict] = {}     # device -> shift alarm held while a set pulls its group (see _hold_pulled)
        self._onsets: dict[str, int] = {}  # "<what>:<group>" -> window an open group-level alert began

    # ---------------------------------------------------------------- driving
    def process(self, batch: DecodedBatch, flush: bool = False) -> StepResult:
        """Feed one micro-batch (readings in arrival order); returns the alerts it caused."""
        out = StepResult(readings=len(batch))
        if len(batch):
            dev = self.registry.index(batch.groups, batch.device_ids)
            n = self.registry.n_devices
            self.devices.resize(n)
            self.reputation.resize(n)
            self.collusion.resize(n)
            if n > len(self._sybil):
                self._sybil = np.r_[self._sybil, np.zeros(max(n, 2 * len(self._sybil)) - len(self._sybil), bool)]
            self.restarts.resize(n)
            if batch.seq is not None:
                self._restart_alerts(dev, batch, self.restarts.observe(dev, batch.seq, batch.ts), out)
            groups = self.registry.device_group[dev]
            out.late = self.aligner.add(groups, dev, batch.ts, batch.values, self.registry.device_local[dev])
            grow = self.registry.n_groups - len(self._spread)
            if grow > 0:
                self._spread = np.r_[self._spread, np.full(grow, np.nan)]
                self._spread_n = np.r_[self._spread_n, np.zeros(grow, np.int64)]
                self._out_run = np.r_[self._out_run, np.zeros(grow, np.int64)]
                self._hist = np.r_[self._hist, np.full((grow, HISTORY), np.nan)]
                self._hist_w = np.r_[self._hist_w, np.full((grow, HISTORY), -1, np.int64)]
            if self.levels is not None:
                self.levels.resize(n, self.registry.n_groups)
            out.max_event_ts = float(batch.ts.max())
        for rnd in self.aligner.close(flush=flush):
            self._round(rnd, out)
        out.collusion_holds = {k: v for k, v in self.collusion.drain_outcomes().items() if v}
        return out

    def flush(self) -> StepResult:
        """Close every open window (end of a file, or an idle stream)."""
        return self.process(DecodedBatch(), flush=True)

    # ---------------------------------------------------------------- one round
    def _untrusted(self, devices: np.ndarray) -> np.ndarray:
        d = np.maximum(devices, 0)
        bad = self.devices.firing[d] | self._quarantined(devices)
        members = self.collusion.members(camouflage=False)
        if len(members):
            bad |= np.isin(devices, members)
        return bad & (devices >= 0)

    def _quarantined(self, devices: np.ndarray) -> np.ndarray:
        """Quarantined devices, at most the least trusted half of each row's present devices:
        reputation is relative, so a group whose every device looks bad (detectors miscalibrated
        on its data) keeps its better half rather than losing its consensus."""
        d = np.maximum(devices, 0)
        q = self.reputation.quarantined[d] & (devices >= 0)
        if devices.ndim == 1 or not q.any():
            return q
        present = devices >= 0
        cap = np.floor(self.settings.collusion_max_fraction * present.sum(axis=1, keepdims=True))
        trust = np.where(present, self.reputation.trust(d), np.inf)
        rank = np.argsort(np.argsort(trust, axis=1, kind="stable"), axis=1)
        return q & (rank < cap)

    def _round(self, rnd: WindowRound, out: StepResult) -> None:
        W = self.window_seconds
        present = rnd.devices >= 0
        untrusted = self._untrusted(rnd.devices)
        if self._relearn(rnd, present, untrusted, out):
            untrusted = self._untrusted(rnd.devices)
        if self.recording is not None:  # the sets as they stand before this round's scan, all their members
            self._isolated_before = self._record_left(rnd, set(self.collusion.members().tolist()),
                                                      self._isolated_before, self.recording.isolated)
            here = set(rnd.devices[present].tolist())  # devices not in this round stay as they were
            self._excluded_before = self._record_left(
                rnd, (self._excluded_before - here) | set(rnd.devices[untrusted].tolist()),
                self._excluded_before, self.recording.excluded)
        # the members that left the consensus (a camouflage member reports it: it stays in, and learns)
        members = self.collusion.members(camouflage=False)
        # probation: a device still warming up enters the consensus only while its group has too few
        # established ones (a fresh fleet); trust is earned, so a flood of new ids cannot move it
        learned = self.devices.learned(np.maximum(rnd.devices, 0))
        novice = present & (learned < self.settings.warmup)
        established = (present & ~untrusted & ~novice).sum(axis=1, keepdims=True)
        untrusted |= novice & (established >= self.settings.min_devices)
        self._sybil_alerts(rnd, present & (learned == 0), established[:, 0], out)
        trusted = present & ~untrusted
        # remove each device's learned calibration offset so the consensus is not shaken by which
        # devices happen to be inliers; the offsets' common level cancels out of every residual
        if self.settings.offset_pin > 0:
            self._pin_offsets(rnd.groups, members)
        if self.levels is not None:
            self._snapshot_offsets(rnd, members)
        unit = self._unit(rnd.groups)[:, None]
        offsets = self.devices.offset(np.maximum(rnd.devices, 0)) * unit
        corrected = np.where(trusted, rnd.values - offsets, np.nan)
        trust = self.reputation.trust(np.maximum(rnd.devices, 0))
        cons = robust_consensus(corrected, min_devices=self.settings.min_devices,
                                cutoff=self.settings.consensus_cutoff, weights=trust)
        # abstain also when the trusted devices disagree far more than this group has shown
        usual = self._spread[rnd.groups]
        dispersed = (~cons.uncertain & (self._spread_n[rnd.groups] >= self.settings.warmup)
                     & (cons.spread > self.settings.dispersion_max * usual))
        self._learn_spread(rnd.groups, cons)
        # ... and when the group is split in two camps (the collusion scan cannot tell which is honest)
        split_g = self.collusion.split_groups()
        split = np.isin(rnd.groups, list(split_g)) & ~cons.uncertain if split_g else np.zeros(len(rnd.groups), bool)
        dispersed &= ~split
        if dispersed.any() or split.any():
            cons = replace(cons, uncertain=cons.uncertain | dispersed | split,
                           value=np.where(dispersed | split, np.nan, cons.value))
        out.windows += len(rnd.groups)
        out.uncertain_windows += int(cons.uncertain.sum())
        ratio = cons.spread / np.where(np.isfinite(usual) & (usual > 0), usual, np.nan)
        self._consensus_alerts(rnd, cons.uncertain, cons.n_valid, out, dispersed, ratio, split)

        # each device is judged against the others. Where the consensus is uncertain nothing is
        # learned, but devices are still scored against every present device's robust consensus
        # (a fallback, never reported), so that alarms can resolve and a group can recover.
        against_m = cons.leave_one_out(corrected)
        cvar = self._consensus_var(rnd, cons.weight)
        learn_from = cons.value  # what the guarded learner learns (below)
        fallback = cons.uncertain & (present.sum(axis=1) >= self.settings.min_devices)
        if fallback.any():
            # every present device but the members of colluding sets (a named camp never judges the other)
            usable = present[fallback] & ~np.isin(rnd.devices[fallback], members) if len(members) else present[fallback]
            every = np.where(usable, rnd.values[fallback] - offsets[fallback], np.nan)
            fb = robust_consensus(every, min_devices=self.settings.min_devices, cutoff=self.settings.consensus_cutoff)
            against_m[fallback] = fb.leave_one_out(every)
            cvar[fallback] = self._consensus_var(rnd, fb.weight, rows=fallback)
            if self.settings.learner_fallback:  # ... and the guarded learner learns it, but in a split group
                learn_from = cons.value.copy()
                learn_from[fallback] = np.where(split[fallback], np.nan, fb.value)
        scored = ~cons.uncertain | fallback
        rows, cols = np.nonzero(present & scored[:, None])
        devices = rnd.devices[rows, cols]
        against = against_m[rows, cols]
        warm = self.devices.learned(devices) >= self.settings.warmup
        # never learn from what was flagged: members of a colluding set (nominated or alerted) keep their offsets
        in_set = np.isin(devices, members)
        events = self.devices.update(devices, rnd.windows[rows], rnd.values[rows, cols], against, cvar[rows, cols],
                                     learn=~cons.uncertain[rows] & ~in_set, unit=unit[rows, 0], peers=rows)
        # reputation evidence from every scored window (in an uncertain one, against the fallback), so that
        # a quarantined device can earn its way back even while its group has too few trusted devices
        firing_now = self.devices.firing[devices]
        confirmed = np.isin(devices, [m for st in self.collusion.confirmed() for m in st.members if m not in st.mimics])
        self.reputation.update(devices, good=(np.abs(events.z) < self.reputation.good_z) & ~firing_now & ~in_set
                               & (self.devices.learned(devices) >= self.settings.warmup), bad=firing_now | confirmed)
        names = self.registry.device_names
        gnames = self.registry.group_names
        held = self._hold_after_restart(devices, events, rnd, rows, cols, out) if self._restarted else set()
        if self._pulled or (len(events.position) and self.settings.collusion_hold_pulled and self.collusion.active()):
            held |= self._hold_pulled(devices, events, rnd, rows, cols, out)
        for j, pos in enumerate(events.position):
            d = int(devices[pos])
            typ = str(events.types[j])
            if j in held:
                continue
            onset_ts = float(events.onset[j]) * W
            g = gnames[int(rnd.groups[rows[pos]])]
            state = "firing" if events.firing[j] else "resolved"
            out.alerts.append(make_alert(
                alert_id=alert_id("device", typ, g, [names[d]], onset_ts), state=state, kind="device",
                type_=typ, group=g, devices=[names[d]], onset_ts=onset_ts, ts=(rnd.windows[rows[pos]] + 1) * W,
                score=events.score[j],
                evidence={"detector": ("SlowShiftCusum" if typ in ("bias", "drift") and events.slow[j]
                                       else DETECTOR_OF_TYPE[typ]), "value": float(rnd.values[rows[pos], cols[pos]]),
                          "consensus": float(cons.value[rows[pos]]), "against": float(against[pos]),
                          "offset": float(self.devices._mean[d]), "scale": float(self.devices.scale(np.array([d]))[0]),
                          "window_seconds": W, **self._copies(events.source[j])}))

        # collusion: every scored device's residual means, a subset scan per group, then the sets
        # where its own alarm froze the offset, against the offset carried on by its drift (when asked for)
        zs = events.z if events.behind is None else events.z - events.behind
        self.collusion.observe(devices[warm], zs[warm])
        if self.settings.collusion_mimic > 0:
            steps = np.full(rnd.devices.shape, np.nan)
            steps[rows[warm], cols[warm]] = events.z[warm]
            self.collusion.observe_round(rnd.devices, steps, rnd.windows)
        in_scan = np.zeros(rnd.devices.shape, bool)
        in_scan[rows[warm], cols[warm]] = True
        noise = self.devices.scale(np.maximum(rnd.devices, 0)) if self.settings.collusion_value_units else None
        honest = None
        if self._anchor:  # groups where a take-over check has just called which camp is honest
            now = dict(zip(rnd.groups.tolist(), rnd.windows.tolist()))
            honest = {g: int(a[2]) for g, a in self._anchor.items()
                      if len(a) > 3 and g in now and now[g] - a[3] <= STICKY}
        alarmed = np.where(rnd.devices >= 0, self.devices.direction(np.maximum(rnd.devices, 0)), 0)
        for nom in self.collusion.scan(rnd.devices, in_scan, rnd.groups, rnd.windows, noise=noise, honest=honest,
                                       alarmed=alarmed):
            g, w = int(rnd.groups[nom.row]), int(rnd.windows[nom.row])
            took = self._took_over(rnd, nom, offsets)
            if took:
                self.collusion.mark_split(g)  # the nominated camp looks like the honest one: abstain
                continue
            self._anchor.pop(g, None)
            opened = self.collusion.nominate(g, w, nom, vouched=took is not None)  # history: the camp that moved
            if self.levels is not None:
                self._restore_level(w, opened)
        certain = ~cons.uncertain
        slot = rnd.windows[certain] % HISTORY
        self._hist[rnd.groups[certain], slot] = cons.value[certain]
        self._hist_w[rnd.groups[certain], slot] = rnd.windows[certain]
        active = self.collusion.measured_groups()  # an active set, or a faded one still measured
        for r in np.flatnonzero(scored & np.isin(rnd.groups, active)) if active else ():
            g = int(rnd.groups[r])
            sel = (rows == r) & warm
            evs = self.collusion.update(g, int(rnd.windows[r]), devices[sel], zs[sel], events.scale[sel],
                                        frozen=events.z[sel])
            for ev in evs:
                out.alerts.append(self._collusion_alert(ev))

        n_present = present.sum(axis=1)
        plain = np.divide(np.where(present, rnd.values, 0.0).sum(axis=1), n_present,
                          out=np.full(len(n_present), np.nan), where=n_present > 0)
        due = np.flatnonzero(rnd.windows % self.settings.learner_every == 0)
        for r, g, c, f, m, sp, end in zip(due.tolist(), rnd.groups[due].tolist(), cons.value[due].tolist(),
                                          learn_from[due].tolist(), plain[due].tolist(), cons.spread[due].tolist(),
                                          ((rnd.windows[due] + 1) * W).tolist()):
            self._learn(rnd, r, g, end, c, f, m, sp, present, out)

    def _copies(self, source: int) -> dict:
        """Evidence naming the device a replay re-sends, if one was found."""
        return {"copies": self.registry.device_names[int(source)]} if source >= 0 else {}

    def _relearn(self, rnd: WindowRound, present: np.ndarray, untrusted: np.ndarray, out: StepResult) -> bool:
        """Learn a group's devices afresh when most of them have been out of the consensus for long.

        With at most a minority of liars in a group, a lasting majority out of the consensus says the
        monitor's model of the group is wrong (offsets and noise learned in a calm stretch, then a
        season or a pollution episode), not the devices: without this the group stays uncertain for
        good, since nothing is learned while it is. Its devices' alarms resolve (``relearned`` in
        their evidence), their offsets, noise, reputation and sets are forgotten, and a
        ``consensus/relearned`` alert stands until they have warmed up again. Returns whether any
        group was reset this round."""
        s = self.settings
        g = rnd.groups
        for gr in list(self._relearning):  # warmed up again: resolve
            now = rnd.windows[g == gr]
            if len(now) and now[0] >= self._relearning[gr] + s.warmup:
                out.alerts.append(self._relearn_alert(gr, "resolved", self._relearning.pop(gr), int(now[0]), {}))
        n_present = present.sum(axis=1)
        out_now = (untrusted & present).sum(axis=1)
        over = (n_present >= s.min_devices) & (out_now > s.relearn_share * n_present)
        self._out_run[g] = np.where(over, self._out_run[g] + 1, 0)
        due = np.flatnonzero(over & (self._out_run[g] >= s.relearn_windows))
        for r in due.tolist():
            self._relearn_group(int(g[r]), int(rnd.windows[r]), int(out_now[r]), int(n_present[r]), out)
        return len(due) > 0

    def _relearn_group(self, g: int, w: int, out_now: int, n_present: int, out: StepResult) -> None:
        """Forget a group's devices (alarms resolved, held ones dropped), their sets, the group's spread
        and history; one ``consensus/relearned`` alert stands until they are warm again."""
        s = self.settings
        devs = np.flatnonzero(self.registry.device_group[: self.registry.n_devices] == g)
        gname = self.registry.group_names[g]
        resolved = 0
        for d in devs[self.devices.firing[devs]].tolist():
            restart = self._restarted.get(d)
            held = self._pulled.pop(d, None) is not None or (restart is not None and restart["absorbed"])
            if restart is not None:
                restart["absorbed"] = False
            if not held:  # a held alarm was never alerted: nothing to resolve
                out.alerts.append(self._verdict_alert(d, gname, w, "resolved", {"relearned": True}))
                resolved += 1
        for ev in self.collusion.forget_group(g, devs, w):
            out.alerts.append(self._collusion_alert(ev))
        self.devices.reset(devs)
        self.reputation.reset(devs)
        if self.levels is not None:
            self.levels.reset(devs)
        self._spread[g], self._spread_n[g] = np.nan, 0
        self._hist[g], self._hist_w[g] = np.nan, -1
        self._anchor.pop(g, None)
        self._out_run[g] = 0
        if g in self._relearning:  # collapsed again before it had warmed up: one alert goes on
            return
        self._relearning[g] = w
        out.alerts.append(self._relearn_alert(g, "firing", w, w, {
            "out_of_consensus": out_now, "present": n_present, "windows": s.relearn_windows,
            "relearn_share": s.relearn_share, "alarms_resolved": resolved, "devices_relearned": len(devs)}))

    def _relearn_alert(self, g: int, state: str, onset: int, w: int, evidence: dict) -> Alert:
        W = self.window_seconds
        name = self.registry.group_names[g]
        return make_alert(
            alert_id=alert_id("consensus", "relearned", name, [], onset * W), state=state, kind="consensus",
            type_="relearned", group=name, devices=[], onset_ts=onset * W, ts=(w + 1) * W,
            score=float(evidence.get("out_of_consensus", 0)),
            evidence={"detector": "relearn", **evidence,
                      "note": "most of the group was out of the consensus for long: its devices are learned afresh"})

    def _record_left(self, rnd: WindowRound, now: set[int], before: set[int], out: list) -> set[int]:
        """Append to ``out`` the devices of ``now`` (a set of this call's own) not out of the consensus
        ``before`` this round, with their window's start; returns the devices out after it."""
        new = now - before
        if new:
            row = {int(g): r for r, g in enumerate(rnd.groups.tolist())}
            for d in sorted(new):
                r = row.get(int(self.registry.device_group[d]))
                if r is not None:
                    out.append((self.registry.device_names[d], float(rnd.windows[r] * self.window_seconds)))
                else:  # its group has no window in this round: it leaves from its group's next one
                    now.discard(d)
        return now

    def _restart_alerts(self, dev: np.ndarray, batch: DecodedBatch, restart: np.ndarray, out: StepResult) -> None:
        """A ``device/restart`` alert for each device whose sequence numbers started again."""
        W = self.window_seconds
        for i in np.flatnonzero(restart):
            d = int(dev[i])
            ts = float(batch.ts[i])
            g = self.registry.group_names[int(self.registry.device_group[d])]
            old = self._restarted.pop(d, None)
            if old is not None:  # restarted again before the last one was closed
                out.alerts.append(self._restart_alert(d, old, "resolved", ts))
            info = {"onset": ts, "group": g, "until": int(ts // W) + self.settings.restart_hold,
                    "absorbed": False, "seq": int(batch.seq[i])}
            self._restarted[d] = info
            out.alerts.append(self._restart_alert(d, info, "firing", ts))

    def _restart_alert(self, d: int, info: dict, state: str, ts: float) -> Alert:
        name = self.registry.device_names[d]
        return make_alert(
            alert_id=alert_id("device", "restart", info["group"], [name], info["onset"]), state=state, kind="device",
            type_="restart", group=info["group"], devices=[name], onset_ts=info["onset"], ts=ts,
            score=1.0 if info["absorbed"] else 0.0,
            evidence={"detector": "sequence numbers", "seq_after": info["seq"],
                      "shift_after_restart": info["absorbed"],
                      "note": "a shift found within restart_hold windows of a restart is reported here, not as bias"})

    def _hold_after_restart(self, devices: np.ndarray, events, rnd: WindowRound, rows: np.ndarray,
                            cols: np.ndarray, out: StepResult) -> set[int]:
        """Events to leave out: a bias or drift that starts within the hold after a restart belongs to
        the restart (a calibration jump). When the hold ends the restart alert resolves; a shift
        still there then is alerted as what it is, with its own onset."""
        W = self.window_seconds
        held: set[int] = set()
        for j, pos in enumerate(events.position):
            d = int(devices[pos])
            info = self._restarted.get(d)
            if info is None or str(events.types[j]) not in ("bias", "drift"):
                continue
            w = int(rnd.windows[rows[pos]])
            if events.firing[j] and w <= info["until"]:
                info["absorbed"] = True
                out.alerts.append(self._restart_alert(d, info, "firing", (w + 1) * W))  # now with the shift
                held.add(j)
            elif not events.firing[j] and info["absorbed"]:
                info["absorbed"] = False  # the shift ended inside the hold
                held.add(j)
        for pos, d, w, info in self._expired(self._restarted, devices, rnd, rows):
            out.alerts.append(self._restart_alert(d, info, "resolved", (w + 1) * W))
            if info["absorbed"] and self.devices.firing[d]:  # the shift outlived the hold: say what it is
                out.alerts.append(self._verdict_alert(d, info["group"], w, "firing", {
                    "after_restart": True, "value": float(rnd.values[rows[pos], cols[pos]])}))
        return held

    def _verdict_alert(self, d: int, group: str, w: int, state: str, evidence: dict) -> Alert:
        """An alert on a device's current alarm, from its verdict (type, onset, peak): raised late after
        a hold (``firing``), or ended by the monitor rather than the data (``resolved``, on relearning)."""
        typ, onset, peak = self.devices.verdict(d)
        onset_ts = onset * self.window_seconds
        name = self.registry.device_names[d]
        return make_alert(
            alert_id=alert_id("device", typ, group, [name], onset_ts), state=state, kind="device", type_=typ,
            group=group, devices=[name], onset_ts=onset_ts, ts=(w + 1) * self.window_seconds, score=peak,
            evidence={"detector": DETECTOR_OF_TYPE.get(typ, typ), **evidence})

    @staticmethod
    def _expired(holds: dict[int, dict], devices: np.ndarray, rnd: WindowRound, rows: np.ndarray):
        """(position, device, window, hold) of every scored device whose hold (``until``) has passed;
        the hold is removed."""
        for pos in np.flatnonzero(np.isin(devices, list(holds))) if holds else ():
            d = int(devices[pos])
            w = int(rnd.windows[rows[pos]])
            if w > holds[d]["until"]:
                yield int(pos), d, w, holds.pop(d)

    def _hold_pulled(self, devices: np.ndarray, events, rnd: WindowRound, rows: np.ndarray,
                     cols: np.ndarray, out: StepResult) -> set[int]:
        """Events to leave out: a bias or drift raised, against the direction of a set its group holds
        (nominated, not yet confirmed), by a device outside the set. Until the rest of a set is found,
        its members still in the consensus pull it their way, and honest devices read as shifted the
        other way. Such an alarm is held until ``PULL_MARGIN`` windows after the set's hold; one that
        ends by then was the pull (nothing is alerted), one still there is alerted as what it is,
        with its own onset. The device is out of the consensus meanwhile, as any device in alarm."""
        held: set[int] = set()
        sets = {st.group: st for st in self.collusion.active() if not st.confirmed}
        for j, pos in enumerate(events.position):
            d = int(devices[pos])
            if d in self._pulled:
                if not events.firing[j]:      # the held alarm ended (or is re-typed): it was never alerted
                    del self._pulled[d]
                    held.add(j)
                continue
            if not events.firing[j] or str(events.types[j]) not in ("bias", "drift"):
                continue
            g = int(rnd.groups[rows[pos]])
            st = sets.get(g)
            if st is None or d in st.members:
                continue
            cusum = self.devices.slow if events.slow[j] else self.devices.cusum
            pos_s, neg_s = cusum.sides(np.array([d]))
            if (1 if pos_s[0] >= neg_s[0] else -1) == st.direction:
                continue
            self._pulled[d] = {"group": self.registry.group_names[g],
                               "until": st.nominated + self.collusion.confirm + PULL_MARGIN}
            held.add(j)
        for pos, d, w, info in self._expired(self._pulled, devices, rnd, rows):
            if self.devices.firing[d]:  # the shift outlived the set's pull: say what it is
                out.alerts.append(self._verdict_alert(d, info["group"], w, "firing", {
                    "held_while_set_pulled": True, "value": float(rnd.values[rows[pos], cols[pos]])}))
        return held

    def _took_over(self, rnd: WindowRound, nom, offsets: np.ndarray) -> bool | None:
        """A set nominated on a short memory after a gross jump: is it the camp that stayed
        where the consensus was before the jump (honest devices, with colluders now holding the
        consensus)? Compares the camp and the rest with the last certain consensus from before
        the set's onset (kept as an anchor while the group abstains). None: no call (no gross jump,
        or no consensus from before it)."""
        r, g, w = nom.row, int(rnd.groups[nom.row]), int(rnd.windows[nom.row])
        present = rnd.devices[r] >= 0
        anchor = self._anchor.get(g)
        if anchor is not None and w - anchor[1] > ANCHOR_MAX_AGE:
            del self._anchor[g]
            anchor = None
        held = anchor is not None  # a take-over was seen: judge every nomination against the same anchor
        if nom.scale == 2 and not held:  # a reference from hours ago says nothing about a small shift
            return None
        if held and len(anchor) > 3 and w - anchor[3] <= STICKY:  # judged already (below)
            return nom.direction == anchor[2]
        if anchor is None:
            back = self.collusion.memory_of(nom.scale)
            ok = (self._hist_w[g] >= 0) & (self._hist_w[g] <= w - 1 - back) & (self._hist_w[g] >= w - 1 - 2 * back)
            if not ok.any():
                return None
            i = int(np.argmax(np.where(ok, self._hist_w[g], -1)))
            anchor = [float(self._hist[g, i]), float(self._hist_w[g, i])]
        vals = rnd.values[r] - offsets[r]
        mem = present & np.isin(rnd.devices[r], nom.members)
        rest = present & ~mem
        if not mem.any() or not rest.any() or not np.isfinite(anchor[0]):
            return None
        m, o = float(np.mean(vals[mem])), float(np.median(vals[rest]))
        noise = float(np.median(self.devices.scale(rnd.devices[r][present])))  # the devices' own sigma
        if not held and (not noise > 0 or abs(m - o) < TAKEOVER_GAP * noise):
            return None  # only a gross shift can be told from the signal's own movement since then
        took = abs(m - anchor[0]) < abs(o - anchor[0])
        if took or held:
            # which camp is honest (the nominated one, or the other) is judged once, right after the jump,
            # when the signal has moved least since the anchor; it stands for STICKY windows, long enough
            # for the other camp to be nominated, short enough that a wrong call costs little
            self._anchor[g] = anchor[:2] + [nom.direction if took else -nom.direction, w]
        return took

    def _pin_offsets(self, groups: np.ndarray, members: np.ndarray) -> None:
        """Move each group's learned offsets together towards a zero median, at ``offset_pin``
        times the rate offsets are learned at.

        Offsets are learned against a consensus made of offset-corrected readings, so any common
        shift of a group's offsets is as consistent as none: nothing holds their common level, and
        it wanders (trust decisions, windows not learned, noise learned at a fast rate; on the hourly
        Beijing replay, by several sigmas over two years). The consensus level wanders with it. Moving
        every offset of a group by the same amount moves its consensus by that amount and leaves every
        residual as it was, so this changes no device's score: it only pins the level to the group's
        median established device (every device past its warm-up, present or not, in alarm or not, so
        that who is trusted does not move it; every device learned at least once moves with it), less
        those first seen in a burst of new ids (an ``input/sybil`` alert): a flood that outnumbers the
        group and learns its lie into its offsets would own that median. With the level restore on,
        the members of active sets (``members``) count with their offsets from before their set's onset."""
        devices = self.registry.members(groups)
        d = np.maximum(devices, 0)
        learned = self.devices.learned(d)
        ok = (devices >= 0) & (learned >= 1)
        if not ok.any():
            return
        anchor = ok & (learned >= self.settings.warmup) & ~self._sybil[d]
        offsets = self.devices.offset(d)
        unit = self._unit(groups)[:, None]
        if self.levels is not None and len(members):  # snapshots are in value units
            offsets = self.levels.before(d, np.broadcast_to(groups[:, None], d.shape), offsets * unit,
                                         np.isin(devices, members)) / unit
        median = row_median(np.where(anchor, offsets, np.nan))
        rate = min(1.0, self.settings.offset_pin * self.devices.alpha)
        step = np.where(np.isfinite(median), -rate * median, 0.0)  # no established device yet: no move
        self.devices.shift_offsets(devices[ok], np.broadcast_to(step[:, None], devices.shape)[ok])
        if self.levels is not None:
            self.levels.shift(groups, step * unit[:, 0])

    def _snapshot_offsets(self, rnd: WindowRound, in_set: np.ndarray) -> None:
        """Snapshot the offsets of the groups due one (established devices only, as the pin's anchor;
        members of active sets, ``in_set``, keep theirs)."""
        due = self.levels.due(rnd.groups, rnd.windows)
        if not due.any():
            return
        members = self.registry.members(rnd.groups[due])
        d = np.maximum(members, 0)
        warm = (members >= 0) & (self.devices.learned(d) >= self.settings.warmup) & ~self._sybil[d]
        unit = self._unit(rnd.groups[due])[:, None]  # in value units: the group's unit changes with its spread
        self.levels.take(rnd.groups[due], rnd.windows[due], members, self.devices.offset(d) * unit, warm,
                         held=np.isin(members, in_set) if len(in_set) else None)

    def _restore_level(self, w: int, st: CollusionSet) -> None:
        """Set ``st`` was nominated at window ``w`` (its members leave the consensus): move every offset of
        the group back together by the median shift its other devices' offsets (not in alarm, not in
        a set, not from a burst of new ids) learned since a snapshot from before the set's onset. That
        is the pull the set taught them while it was in the consensus; moving all offsets together
        changes no residual, only the consensus level, which goes back to where the set found it. Only
        a shift against the set's direction counts, and at most what the members' mean residual
        moves a plain mean of the group by: more is the level's own wander (fast where offsets learn
        fast, as on the hourly Beijing replay), which a restore must not undo. The members keep that
        snapshot while they are in the set (their offsets from before they learned their lie)."""
        g = st.group
        devs = self.registry.members(np.array([g]))[0]
        devs = devs[devs >= 0]
        others = devs[~np.isin(devs, self.collusion.members(camouflage=False)) & ~self.devices.firing[devs]
                      & ~self._sybil[devs]]
        slot = self.levels.slot(g, w - self.collusion.memory_of(st.scale))  # the set's onset, as the set has it
        unit = float(self._unit(np.array([g]))[0])  # snapshots are in value units
        shift = self.levels.learned_shift(g, slot, others, self.devices.offset(others) * unit)
        members = np.asarray(st.members, np.int64)
        self.levels.hold(members, slot)
        lie = abs(float(np.mean(self.collusion.mean_residual(members, st.scale) * self.devices.scale(members)))) * unit
        shift = -st.direction * min(max(-st.direction * shift, 0.0), lie * len(members) / len(devs))
        learned = devs[self.devices.learned(devs) >= 1]
        if shift != 0.0 and len(learned):
            self.devices.shift_offsets(learned, np.full(len(learned), -shift / unit))
            self.levels.shift(np.array([g]), np.array([-shift]))
            st.level_restored = shift

    def _unit(self, groups: np.ndarray) -> np.ndarray:
        """Per group: the unit residuals are learned in (1, or the smoothed spread of the group)."""
        if not self.settings.relative_scale:
            return np.ones(len(groups))
        u = self._spread[groups]
        return np.where(np.isfinite(u) & (u > 0), u, 1.0)

    def _learn_spread(self, groups: np.ndarray, cons) -> None:
        """Exponential average of each group's robust spread across its trusted devices (what the
        group has shown), from every window with enough of them, so a lasting change is absorbed."""
        ok = (cons.n_valid >= self.settings.min_devices) & np.isfinite(cons.spread) & (cons.spread > 0)
        g, sp = groups[ok], cons.spread[ok]
        cur = self._spread[g]
        a = self.settings.spread_alpha
        self._spread[g] = np.where(np.isfinite(cur), (1 - a) * cur + a * sp, sp)
        self._spread_n[g] += 1

    def _consensus_var(self, rnd: WindowRound, weight: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """(R, C) variance of the leave-one-out weighted consensus each device is compared with."""
        devices = rnd.devices if rows is None else rnd.devices[rows]
        unit = self._unit(rnd.groups if rows is None else rnd.groups[rows])[:, None]
        own = weight ** 2 * (self.devices.scale(np.maximum(devices, 0)) * unit) ** 2
        total, wsum = own.sum(axis=1, keepdims=True), weight.sum(axis=1, keepdims=True)
        rest = wsum - weight
        return np.divide(total - own, rest ** 2, out=np.zeros(own.shape), where=rest > 1e-12)

    def _sybil_alerts(self, rnd: WindowRound, fresh: np.ndarray, established: np.ndarray, out: StepResult) -> None:
        """An ``input/sybil`` alert when many new device ids appear in an established group at once."""
        s, W = self.settings, self.window_seconds
        for r in np.flatnonzero(fresh.any(axis=1) | np.isin(rnd.groups, list(self._bursts))):
            g, w = int(rnd.groups[r]), int(rnd.windows[r])
            burst = self._bursts.get(g)
            new = [int(d) for d in rnd.devices[r][fresh[r]]]
            if burst is None:
                if not new or established[r] < s.min_devices:
                    continue
                burst = self._bursts[g] = {"start": w, "last": w, "devices": [], "fired": False}
            if new:
                burst["devices"] += new
                burst["last"] = w
            name = self.registry.group_names[g]
            enough = len(burst["devices"]) >= max(s.sybil_min_new, s.sybil_fraction * max(int(established[r]), 1))
            quiet = w - burst["last"]
            if not burst["fired"] and quiet > s.sybil_window:
                del self._bursts[g]  # a few new devices, spread out: ordinary churn
                continue
            if enough and (new or not burst["fired"]) and quiet <= s.sybil_window:
                burst["fired"] = True
                self._sybil[burst["devices"]] = True
                out.alerts.append(self._sybil_alert(name, burst, "firing", (w + 1) * W, new))
            elif burst["fired"] and quiet > s.warmup:
                del self._bursts[g]
                out.alerts.append(self._sybil_alert(name, burst, "resolved", (w + 1) * W, []))

    def _sybil_alert(self, name: str, burst: dict, state: str, ts: float, new: list[int]):
        devices = sorted(self.registry.device_names[d] for d in burst["devices"])
        onset = burst["start"] * self.window_seconds
        return make_alert(
            alert_id=alert_id("input", "sybil", name, [], onset), state=state, kind="input", type_="sybil",
            group=name, devices=devices, onset_ts=onset, ts=ts, score=float(len(devices)),
            evidence={"detector": "new-device burst", "new_devices": len(devices),
                      "new_in_this_window": sorted(self.registry.device_names[d] for d in new),
                      "note": "new devices stay on probation (out of the consensus) until they have warmed up"})

    def _consensus_alerts(self, rnd: WindowRound, uncertain: np.ndarray, n_valid: np.ndarray, out: StepResult,
                          dispersed: np.ndarray, ratio: np.ndarray, split: np.ndarray) -> None:
        W = self.window_seconds
        for r, g in enumerate(rnd.groups.tolist()):
            was = g in self._uncertain
            if bool(uncertain[r]) == was:
                continue
            name = self.registry.group_names[g]
            ts = float((rnd.windows[r] + 1) * W)
            if not was:
                self._uncertain.add(g)
                self._onsets[f"uncertain_onset:{g}"] = int(rnd.windows[r])
            else:
                self._uncertain.discard(g)
            onset = self._onsets[f"uncertain_onset:{g}"] * W
            out.alerts.append(make_alert(
                alert_id=alert_id("consensus", "uncertain", name, [], onset), state="firing" if not was else "resolved",
                kind="consensus", type_="uncertain", group=name, devices=[], onset_ts=onset, ts=ts,
                score=float(n_valid[r]),
                evidence={"detector": "robust_consensus",
                          "reason": ("dispersion" if dispersed[r] else "split into two camps" if split[r]
                                     else "too few trusted devices"),
                          "trusted_readings": int(n_valid[r]), "min_devices": self.settings.min_devices,
                          "spread_over_usual": None if not np.isfinite(ratio[r]) else round(float(ratio[r]), 3),
                          "dispersion_max": self.settings.dispersion_max}))

    def _collusion_alert(self, ev: CollusionEvent) -> Alert:
        W = self.window_seconds
        s = ev.set
        name = self.registry.group_names[s.group]
        members = sorted(self.registry.device_names[d] for d in s.members)
        onset = s.onset * W
        # members in an alarm of their own, what and since when: one long in alarm, named with others that
        # are not, may be a lone liar named with honest devices drifting its way
        own = {}
        for d in s.members:
            if self.devices.firing[d]:
                kind, since, _ = self.devices.verdict(d)
                own[self.registry.device_names[d]] = {"type": kind, "onset_ts": since * W}
        own = dict(sorted(own.items()))
        return make_alert(
            alert_id=alert_id("collusion", "collusion", name, ["up" if s.direction > 0 else "down"], onset),
            state=ev.state, kind="collusion", type_="collusion", group=name, devices=members, onset_ts=onset,
            ts=(ev.window + 1) * W, score=s.score,
            evidence={"detector": "CollusionDetector", "direction": "high" if s.direction > 0 else "low",
                      "members": len(members), "shift_chi2_per_df": round(s.homogeneity, 3),
                      "shift_sigmas": round(s.shift, 3),
                      "new_members": sorted(self.registry.device_names[d] for d in s.new_members),
                      "scan_evidence": round(s.score, 3),
                      "memory_windows": self.collusion.memory_of(s.scale),
                      "nominated_ts": (s.nominated + 1) * W, "level_restored": round(s.level_restored, 6),
                      **({"camouflage": sorted(self.registry.device_names[d] for d in s.mimics)} if s.mimics else {}),
                      **({"in_own_alarm": own} if own else {}),
                      **({"ended": s.ended} if s.ended else {})})

    def _learn(self, rnd: WindowRound, r: int, g: int, ts: float, consensus: float, fallback: float, plain: float,
               spread: float, present: np.ndarray, out: StepResult) -> None:
        """The group learner of row ``r`` (``present``: the round's (R, C) present devices; ``fallback``:
        what the guarded model learns when the consensus is uncertain, NaN for nothing)."""
        learner = self._learners.get(g)
        if learner is None:
            learner = self._learners[g] = self._new_learner()
        step = learner.update(ts, consensus, plain, spread, fallback=fallback)
        if step.regression is not None:
            self._version_alert(g, rnd, r, ts, step, out)
        if self.recording is not None:
            rec = self.recording
            rec.group.append(g)
            rec.window.append(int(rnd.windows[r]))
            rec.consensus.append(float(consensus))
            rec.plain_mean.append(plain)
            rec.guarded.append(step.guarded_forecast)
            rec.shadow.append(step.shadow_forecast)
        if not step.changed:
            return
        name = self.registry.group_names[g]
        if step.alarm:
            self._onsets[f"learner_onset:{g}"] = int(rnd.windows[r])
        onset = self._onsets[f"learner_onset:{g}"] * self.window_seconds
        devs = rnd.devices[r][present[r]]
        blocked = sorted(self.registry.device_names[int(d)] for d in devs[self._untrusted(devs)])
        out.alerts.append(make_alert(
            alert_id=alert_id("learner", "poisoning", name, [], onset), state="firing" if step.alarm else "resolved",
            kind="learner", type_="poisoning", group=name, devices=blocked, onset_ts=onset, ts=ts,
            score=step.divergence,
            evidence={"detector": "GroupLearner", "divergence_spreads": round(step.divergence, 4),
                      "threshold": self.settings.learner_threshold,
                      "guarded_abs_error": step.guarded_error, "shadow_abs_error": step.shadow_error}))

    def _new_learner(self) -> GroupLearner:
        s = self.settings
        return GroupLearner(lr=s.learner_lr, warmup=s.learner_warmup, threshold=s.learner_threshold,
                            version_every=s.learner_version_every, regression=s.learner_regression)

    def _version_alert(self, g: int, rnd: WindowRound, r: int, ts: float, step, out: StepResult) -> None:
        """``learner/regression`` fires when a new model version was rolled back, resolves at the next good one."""
        was = g in self._regressing
        if step.rolled_back == was:
            return
        name = self.registry.group_names[g]
        if step.rolled_back:
            self._regressing.add(g)
            self._onsets[f"regression_onset:{g}"] = int(rnd.windows[r])
        else:
            self._regressing.discard(g)
        onset = self._onsets[f"regression_onset:{g}"] * self.window_seconds
        out.alerts.append(make_alert(
            alert_id=alert_id("learner", "regression", name, [], onset), state="firing" if step.rolled_back else "resolved",
            kind="learner", type_="regression", group=name, devices=[], onset_ts=onset, ts=ts, score=step.regression,
            evidence={"detector": "GroupLearner version check",
                      "error_increase_spreads": round(float(step.regression), 4),
                      "threshold": self.settings.learner_regression, "rolled_back": step.rolled_back}))

    # ---------------------------------------------------------------- views
    def firing_devices(self) -> int:
        return int(self.devices.firing[: self.registry.n_devices].sum())

    def suspicious(self, k: int) -> list[tuple[str, str, float, float]]:
        """The ``k`` devices with the largest mean-shift or noise statistic over its threshold:
        (device, group, score, trust), most suspicious first."""
        n = self.registry.n_devices
        if k <= 0 or n == 0:
            return []
        d = np.arange(n)
        pos, neg = self.devices.cusum.sides(d)
        score = np.maximum(np.maximum(pos, neg) / self.devices.cusum.h,
                           self.devices.variance._s[:n] / self.devices.variance.h)
        top = d[np.argsort(-score, kind="stable")[:k]]
        top = top[score[top] > 0]
        trust = self.reputation.trust(top)
        groups = self.registry.device_group
        return [(self.registry.device_names[i], self.registry.group_names[groups[i]], float(score[i]), float(t))
                for i, t in zip(top.tolist(), trust.tolist())]

    def trust_states(self) -> dict[str, int]:
        """Devices by trust state: quarantined, suspect (in alarm), trusted."""
        n = self.registry.n_devices
        q = self.reputation.quarantined[:n]
        f = self.devices.firing[:n] & ~q
        return {"quarantined": int(q.sum()), "suspect": int(f.sum()), "trusted": int(n - q.sum() - f.sum())}

    def collusion_sets(self) -> int:
        return len(self.collusion.active())

    def uncertain_groups(self) -> int:
        return len(self._uncertain)

    def learner_divergence(self) -> float:
        return max((gl._div for gl in self._learners.values()), default=0.0)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """All learned state as plain JSON-able numbers, lists and dicts (no pickle)."""
        return {
            "version": 1, "window_seconds": self.window_seconds,
            "registry": self.registry.state_dict(), "aligner": self.aligner.state_dict(),
            "devices": self.devices.state_dict(), "collusion": self.collusion.state_dict(),
            "reputation": self.reputation.state_dict(),
            "learners": {str(g): gl.state_dict() for g, gl in self._learners.items()},
            "uncertain": sorted(self._uncertain), "onsets": dict(self._onsets), "regressing": sorted(self._regressing),
            "bursts": [[g, b] for g, b in self._bursts.items()], "sybil": np.flatnonzero(self._sybil).tolist(),
            "spread": [None if not np.isfinite(x) else float(x) for x in self._spread],
            "spread_n": self._spread_n.tolist(), "out_run": self._out_run.tolist(),
            "relearning": [[g, w] for g, w in self._relearning.items()],
            "hist": [[None if not np.isfinite(x) else float(x) for x in row] for row in self._hist],
            "hist_w": self._hist_w.tolist(), "anchor": [[g, a] for g, a in self._anchor.items()],
            "restarts": self.restarts.state_dict(), "restarted": [[d, i] for d, i in self._restarted.items()],
            "pulled": [[d, i] for d, i in self._pulled.items()],
            **({"levels": self.levels.state_dict()} if self.levels is not None else {}),
        }

    @classmethod
    def from_state(cls, settings: DetectionSettings, state: dict) -> "Pipeline":
        p = cls(settings, window_seconds=state["window_seconds"])
        p.registry = Registry.from_state(state["registry"])
        p.aligner.load_state_dict(state["aligner"])
        p.devices.load_state_dict(state["devices"])
        p.collusion.load_state_dict(state["collusion"])
        p.reputation.load_state_dict(state["reputation"])
        for g, st in state["learners"].items():
            gl = p._new_learner()
            gl.load_state_dict(st)
            p._learners[int(g)] = gl
        p._uncertain = set(state["uncertain"])
        p._onsets = dict(state["onsets"])
        p._regressing = set(state.get("regressing", []))
        p._bursts = {int(g): b for g, b in state.get("bursts", [])}
        p._sybil = np.zeros(p.registry.n_devices, bool)
        p._sybil[np.asarray(state.get("sybil", []), dtype=np.int64)] = True
        p._spread = np.array([np.nan if x is None else x for x in state.get("spread", [])], dtype=float)
        p._spread_n = np.array(state.get("spread_n", [0] * len(p._spread)), dtype=np.int64)
        p._out_run = np.array(state.get("out_run", [0] * len(p._spread)), dtype=np.int64)
        p._relearning = {int(g): int(w) for g, w in state.get("relearning", [])}
        hist = state.get("hist", [[None] * HISTORY] * len(p._spread))
        p._hist = np.array([[np.nan if x is None else x for x in row] for row in hist], dtype=float).reshape(-1, HISTORY)
        p._hist_w = np.array(state.get("hist_w", [[-1] * HISTORY] * len(p._spread)), dtype=np.int64).reshape(-1, HISTORY)
        p._anchor = {int(g): list(a) for g, a in state.get("anchor", [])}
        if "restarts" in state:
            p.restarts.load_state_dict(state["restarts"])
        p._restarted = {int(d): dict(i) for d, i in state.get("restarted", [])}
        p._pulled = {int(d): dict(i) for d, i in state.get("pulled", [])}
        if p.levels is not None:
            p.levels.load_state_dict(state.get("levels", {}))
            p.levels.resize(p.registry.n_devices, p.registry.n_groups)
        return p

    def group_view(self) -> dict[str, np.ndarray]:
        """Read-only, one entry per group index (for per-group metrics): devices by trust state, active
        colluding sets and their members, 1 where the consensus is uncertain, the group's usual spread
        (NaN until learned) and the guarded/shadow learner divergence."""
        G, n = self.registry.n_groups, self.registry.n_devices
        grp = self.registry.device_group[:n]
        q = self.reputation.quarantined[:n]
        f = self.devices.firing[:n] & ~q
        sets, members = np.zeros(G, np.int64), np.zeros(G, np.int64)
        for s in self.collusion.active():
            sets[s.group] += 1
            members[s.group] += len(s.members)
        uncertain = np.zeros(G, np.int64)
        uncertain[sorted(self._uncertain)] = 1
        spread = np.full(G, np.nan)
        spread[:min(G, len(self._spread))] = self._spread[:G]
        divergence = np.zeros(G)
        for g, gl in self._learners.items():
            divergence[g] = gl._div
        return {"trusted": np.bincount(grp[~q & ~f], minlength=G), "suspect": np.bincount(grp[f], minlength=G),
                "quarantined": np.bincount(grp[q], minlength=G), "collusion_sets": sets,
                "colluding_devices": members, "uncertain": uncertain, "spread": spread, "divergence": divergence}
