"""Devices of one group that deviate together: named as one colluding set.

Every scored device keeps exponentially weighted means of its standardised
residual at three memories (``memory / 4``, ``memory`` and ``4 * memory``
windows). In units of their own standard error these are N(0, 1) for an
honest device, so each window a *subset scan* (`monitor.scan`) finds, per
group, memory and direction, the set of devices whose means stand out
together from the rest of the group, and weighs it against the number of
sets it was chosen from. Evidence above ``threshold`` (about ``e**-threshold``
false nominations per group-window and memory under honest noise) nominates a
set (a device in a bias or drift alarm counts only in its alarm's direction: its
offset froze when it was flagged, so a poisoner between its episodes reads the
other way): its members leave the consensus at once, before any alert, so a set
shifting the group by less than its own spread is isolated as soon as it is
seen.

Colluders who share one offset move by the *same* amount; honest devices
that deviate together for a physical reason (sun on one wall, an open door)
move by different amounts. So a nominated set is held for ``confirm``
windows while each member's shift (in value units) is measured, and is
alerted only if the shifts agree: the chi-square of their spread around the
common shift, per degree of freedom, at most ``homogeneity``, where each
member's variance is its standard error plus ``tolerance`` of its own noise
(honest devices of one group are not perfectly alike: weather fronts reach
them at different times). The other devices of the group are measured over the hold too:
when ``outsiders`` of them are shifted the set's way by other amounts than its members (sun
on a wall heats devices by many sizes, and the scan names the cluster that agrees best), the
set is dropped as well. With ``gap`` (0, off, here; 2 in the service's settings) the members' common shift must also stand
``gap`` robust standard deviations of the others' shifts beyond their median: honest devices drift
apart, and a long memory can nominate the edge of a group that has spread. A set whose members disagree is dropped and the group is not
re-examined for ``cooldown`` windows; one whose deviation fades first is
dropped as transient, but remembered for ``recur`` windows: nominated again
(same direction, sharing at least ``min_members`` devices and half the
smaller set, the members of the faded sets whose hold it had resumed
counted in) it goes on with the hold it had, so an intermittent set, or a
poisoner's next episode, is confirmed over its active spells. With ``measure_faded`` a remembered
set goes on being measured meanwhile, so a resumed hold has its members' shifts over the pauses
too: a set lying in spells shorter than the hold is measured over spells and pauses alike (its
members share both) rather than over the few windows of each spell it is held. When the scan
finds two opposite camps that together make up most of the group (``split``) and deviate by about as much each
(within ``split_ratio``), say half the devices shifted, nothing
is nominated: there is no telling which camp is honest, and the group's
consensus abstains (uncertain) until the split ends. For the same reason a held set that, with the
devices standing with it over the hold, makes up ``camp`` of its group (nearly half or more) is not
alerted when its shift is within the spread (under `TAKEOVER_GAP`) and the consensus' history did not
vouch for it: in a group half of which colludes, the honest camp reads off against a consensus the
colluders hold as much as they do against an honest one, and the scan may find it first.

Once alerted, the set's onset is a known change point, so every other device
of the group is tested against it: the sum of its standardised residuals
since then, over the square root of their count, joins it past ``join_z`` in
the set's direction. The set resolves after ``quiet`` windows with fewer
than ``min_members`` members still deviating, or (with ``recheck``) when the members it was
alerted with, measured again over blocks as long as the hold, disagree on their shift ``recheck``
blocks in a row: honest devices alerted by mistake drift apart against their frozen offsets.

With ``mimic`` (0, off, here and in the service's settings) a device whose residual steps have been far
smaller than its group's since about an alerted set's onset (`monitor.mimic`) joins it as its camouflage
member, the one that reports the consensus the set pulls (``mimics``; it stays in the consensus).

State per device: three float64 means (and the camouflage test's 12 bytes when ``mimic`` is on). Per group: at most one active set (plain
numbers; while it is held, three sums for each device of the group), at most one faded set
(the same) and a cool-down deadline.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from monitor.mimic import MimicCusum
from monitor.scan import evidence_bounds, row_median, subset_scan


TAKEOVER_GAP = 2.0
"""Camps this many device sigmas apart are told apart by the consensus' history (the pipeline's take-over
check): a gross jump stands out against the signal's own movement; a shift within the spread does not."""

OUTCOMES = ("nominated", "resumed", "alerted", "faded", "unshifted", "heterogeneous", "outsiders", "camp",
            "relearned")
"""What becomes of the sets the scan nominates: held (``nominated``; ``resumed`` as well when it is a set
that faded coming back, whose hold goes on), then ``alerted``, or dropped because
their deviation ``faded`` during the hold, their members were no longer shifted over it, or (with ``gap``)
no further than the rest of the group spreads (``unshifted``),
disagreed on the shift (``heterogeneous``), devices outside shifted their way by other amounts
(``outsiders``), with the devices standing with them they made up nearly half the group or more (``camp``),
or their group was learned afresh (``relearned``)."""


@dataclass
class CollusionSet:
    """An active colluding set of one group (plain numbers: serialisable)."""

    group: int
    direction: int               # +1 reads high, -1 reads low
    onset: float                 # window where the set began deviating (estimated)
    members: list[int]           # device indices
    score: float = 0.0           # scan evidence when nominated
    scale: int = 1               # index of the memory that nominated it
    quiet: int = 0               # windows with too few members still deviating
    sums: dict[int, list[float]] = field(default_factory=dict)  # device -> [sum z, count] since confirmation
    confirmed: bool = False      # passed the homogeneity test (alerted)
    shifts: dict[int, list[float]] = field(default_factory=dict)  # member -> [sum shift, count, sum scale^2]
    new_members: list[int] = field(default_factory=list)
    homogeneity: float = 0.0     # chi-square per degree of freedom of the members' shifts
    shift: float = 0.0           # the members' common shift at confirmation, in their own sigmas
    nominated: int = 0           # window of the nomination
    seen: list[int] = field(default_factory=list)  # its members and those of the faded sets whose hold it resumed
    core: list[int] = field(default_factory=list)  # its members when alerted (the re-check tests them)
    block: int = -1              # once alerted: window the current re-check block began (-1: none yet)
    failed: int = 0              # once alerted: re-check blocks in a row whose members' shifts disagreed
    ended: str = ""              # why it resolved: "quiet" (too few members still deviating) or "heterogeneous"
    vouched: bool = False        # the consensus' history called it the camp that moved (a take-over check)
    level_restored: float = 0.0  # how far its group's consensus level was moved back at nomination (value units)
    mimics: list[int] = field(default_factory=list)  # members that joined as too quiet (camouflage: see ``mimic``)


@dataclass(frozen=True)
class CollusionEvent:
    state: str                   # "firing" (new or grown) or "resolved"
    set: CollusionSet
    window: int


@dataclass(frozen=True)
class Nomination:
    """A set found by the scan in one row of a window round."""

    row: int
    direction: int
    scale: int
    members: np.ndarray          # device indices
    evidence: float


class CollusionDetector:
    """Finds sets of devices whose residuals shift the same way at the same time.

    >>> det = CollusionDetector(memory=4, confirm=3)
    >>> det.resize(8)
    >>> rng = np.random.default_rng(0)
    >>> devices = np.arange(8)[None, :]
    >>> for w in range(40):
    ...     z = rng.normal(size=8) + np.where(np.arange(8) < 3, 3.0 * (w >= 20), 0.0)
    ...     det.observe(devices[0], z)
    ...     for nom in det.scan(devices, np.ones((1, 8), bool), np.array([0])):
    ...         _ = det.nominate(0, w, nom)
    ...     events = det.update(0, w, devices[0], z, np.ones(8))
    ...     if events:
    ...         break
    >>> [(e.state, sorted(e.set.members), e.set.direction, w) for e in events]
    [('firing', [0, 1, 2], 1, 25)]
    """

    def __init__(self, min_members: int = 2, max_fraction: float = 0.5, threshold: float = 14.0, memory: int = 32,
                 winsor: float = 1.5, clip: float = 4.0, still_z: float = 2.0, join_z: float = 5.0, quiet: int = 10,
                 confirm: int = 90, tolerance: float = 0.05, homogeneity: float = 2.5, cooldown: int = 60,
                 split: float = 0.6, split_ratio: float = 1.5, extend_z: float = 2.5, confirm_z: float = 3.0,
                 penalty: str = "calibrated", outsiders: int = 2, recur: int = 0, gap: float = 0.0,
                 recheck: int = 0, measure_faded: bool = False, camp: float = 0.0, mimic: float = 0.0) -> None:
        if not (min_members >= 2 and 0 < max_fraction <= 1 and threshold > 0 and memory >= 4 and winsor > 0
                and clip > 0 and still_z > 0 and join_z > 0 and quiet >= 1 and confirm >= 1
                and tolerance >= 0 and homogeneity > 0 and cooldown >= 0
                and 0 < split <= 1 and split_ratio >= 1 and extend_z > 0 and confirm_z > 0
                and penalty in ("calibrated", "union") and outsiders >= 0 and recur >= 0 and gap >= 0
                and recheck >= 0 and 0 <= camp <= 1 and mimic >= 0):
            raise ValueError("invalid CollusionDetector parameters")
        self.min_members, self.max_fraction, self.threshold, self.memory = min_members, max_fraction, threshold, memory
        self.winsor, self.clip, self.still_z, self.join_z, self.quiet = winsor, clip, still_z, join_z, quiet
        self.confirm, self.tolerance = confirm, tolerance
        self.homogeneity, self.cooldown, self.split, self.split_ratio = homogeneity, cooldown, split, split_ratio
        self.extend_z, self.confirm_z, self.penalty, self.outsiders = extend_z, confirm_z, penalty, outsiders
        self.recur, self.gap, self.recheck, self.measure_faded = recur, gap, recheck, measure_faded
        self.camp, self.mimic = camp, mimic
        self._quiet = MimicCusum(h=mimic) if mimic > 0 else None  # devices reading too close to their group
        lam = 1.0 / np.array([memory / 4.0, memory, 4.0 * memory])
        self._lam = lam
        self._se = np.sqrt(lam / (2.0 - lam))  # stationary sd of an EWMA of N(0, 1)
        self._ewma = np.zeros((0, 3))
        self._blocked: dict[int, int] = {}  # group -> window until which no set is nominated
        self._split: set[int] = set()       # groups split in two camps at the last scan
        self._active: dict[int, CollusionSet] = {}
        self._faded: dict[int, tuple[int, CollusionSet]] = {}  # group -> (window, set) of its last faded set
        self._outcomes = dict.fromkeys(OUTCOMES, 0)  # held sets by outcome since the last `drain_outcomes`

    # ------------------------------------------------------------ per device
    def resize(self, n: int) -> None:
        if n > len(self._ewma):
            self._ewma = np.r_[self._ewma, np.zeros((max(n, 2 * len(self._ewma)) - len(self._ewma), 3))]
        if self._quiet is not None:
            self._quiet.resize(n)

    def observe_round(self, devices: np.ndarray, z: np.ndarray, windows: np.ndarray) -> None:
        """One window round's residuals as groups by device slots (``z`` NaN where not scored): each
        device's residual steps against its group's, for the camouflage test (``mimic``)."""
        if self._quiet is not None:
            self._quiet.observe(devices, z, windows)

    def observe(self, devices: np.ndarray, z: np.ndarray) -> None:
        """Fold one window's standardised residuals (clipped at ``±clip``) into the devices' means."""
        zc = np.clip(z, -self.clip, self.clip)[:, None]
        self._ewma[devices] += self._lam[None, :] * (zc - self._ewma[devices])

    def memory_of(self, scale: int) -> int:
        """Windows of memory of one of the three running means."""
        return round(1.0 / self._lam[scale])

    def mean_residual(self, devices: np.ndarray, scale: int) -> np.ndarray:
        """Each device's mean residual at one memory, in its own sigmas."""
        return self._ewma[devices, scale]

    def standing(self, devices: np.ndarray, scale: int) -> np.ndarray:
        """Each device's mean residual at one memory, in standard errors."""
        return self._ewma[devices, scale] / self._se[scale]

    # ------------------------------------------------------------ per group
    def split_groups(self) -> set[int]:
        """Groups whose devices form two opposite camps making up most of the group (at the last
        scan): the consensus cannot tell which camp is honest and should abstain."""
        return self._split

    def mark_split(self, group: int) -> None:
        """Treat a group as split (its consensus abstains) until its next scan says otherwise."""
        self._split.add(group)

    def members(self, camouflage: bool = True) -> np.ndarray:
        """Device indices of every active set (nominated or alerted); without its camouflage members
        (``camouflage=False``: they report the consensus, so keeping them in it moves nothing)."""
        out = [m for s in self._active.values() for m in s.members if camouflage or m not in s.mimics]
        return np.asarray(out, dtype=np.int64)

    def active(self) -> list[CollusionSet]:
        return list(self._active.values())

    def confirmed(self) -> list[CollusionSet]:
        return [s for s in self._active.values() if s.confirmed]

    def scan(self, devices: np.ndarray, scored: np.ndarray, groups: np.ndarray,
             windows: np.ndarray | None = None, noise: np.ndarray | None = None,
             honest: dict[int, int] | None = None, alarmed: np.ndarray | None = None) -> list[Nomination]:
        """Rows of a window round (``devices``: (R, C) indices, -1 absent; ``scored``: (R, C) bool;
        ``windows``: (R,) window of each row) whose group has no active set and is not cooling
        down, where a set stands out. ``noise``: (R, C) each device's own noise level (value
        units): sets are then sought as one shift in value units (see `subset_scan`).
        ``honest``: group -> direction of a camp known to be honest (by the consensus' history);
        in those groups only the other camp is sought, and two camps are no reason to abstain.
        ``alarmed``: (R, C) the direction of each device's bias or drift alarm (0 none). Such a device
        is scored against the offset it had before its alarm, so once the shift it was flagged for
        ends, what it absorbed before the alarm and its natural drift since read as a deviation,
        often the other way (a poisoner between its episodes): it joins sets only in its alarm's
        direction."""
        if self._faded and windows is not None:  # a faded set is forgotten once ``recur`` windows have passed
            hit = np.flatnonzero(np.isin(groups, list(self._faded)))
            for g, w in zip(groups[hit].tolist(), windows[hit].tolist()):
                if w - self._faded[g][0] > self.recur:
                    del self._faded[g]
        free = np.ones(len(groups), bool)
        if self._active:
            free &= ~np.isin(groups, list(self._active))
        if self._blocked and windows is not None:
            blocked = np.array(list(self._blocked.items()), dtype=np.int64)  # (group, until)
            hit = np.isin(groups, blocked[:, 0])
            until = dict(self._blocked)
            free[hit] &= np.array([until[int(g)] for g in groups[hit]]) < windows[hit]
        if not free.any():
            return []
        rows = np.flatnonzero(free)
        d = np.maximum(devices[rows], 0)
        ok = scored[rows] & (devices[rows] >= 0)
        n = ok.sum(axis=1)
        best = np.full(len(rows), -np.inf)
        how = np.zeros((len(rows), 2), int)  # (scale, direction)
        split = np.zeros(len(rows), bool)
        known = np.array([honest.get(int(g), 0) for g in groups[rows]]) if honest else None
        rel = None
        if noise is not None:  # each device's noise relative to its group's median
            lv = np.where(ok & (noise[rows] > 0), noise[rows], np.nan)
            med = row_median(lv)
            rel = lv / np.where(np.isfinite(med), med, 1.0)[:, None]
        # devices alarmed the other way, per side scanned (None: there are none)
        against = None if alarmed is None else alarmed[rows]
        other = {1: None, -1: None} if against is None or not against.any() else {1: against < 0, -1: against > 0}
        for s in range(3):
            u = np.where(ok, self._ewma[d, s] / self._se[s], np.nan)
            if other[1] is None:
                u_hi = u_lo = u
                high, low = evidence_bounds(u, self.min_members, self.max_fraction, scale=rel, penalty=self.penalty)
            else:
                u_hi, u_lo = self._sided(u, other[1], 1), self._sided(u, other[-1], -1)
                high = evidence_bounds(u_hi, self.min_members, self.max_fraction, scale=rel, penalty=self.penalty)[0]
                low = evidence_bounds(u_lo, self.min_members, self.max_fraction, scale=rel, penalty=self.penalty)[1]
            up, down = self._scan_side(u_hi, high, rel), self._scan_side(-u_lo, low, rel)
            # two opposite camps, together most of the group, deviating by about as much each: no way to
            # tell which is honest (a minority set moves by more than the majority it pulls)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.maximum(up[2], down[2]) / np.minimum(up[2], down[2])
            split |= ((up[0] >= self.threshold) & (down[0] >= self.threshold)
                      & (up[1] + down[1] >= self.split * n) & (ratio <= self.split_ratio))
            for direction, (evidence, _, _) in ((1, up), (-1, down)):
                if honest:
                    evidence = np.where(known == direction, -np.inf, evidence)
                better = evidence > best
                best = np.where(better, evidence, best)
                how[better] = (s, direction)
        scanned = groups[rows]
        if honest:
            split &= known == 0
        self._split -= set(scanned[~split].tolist())
        self._split |= set(scanned[split].tolist())
        out = []
        for i in np.flatnonzero((best >= self.threshold) & ~split):
            s, direction = int(how[i, 0]), int(how[i, 1])
            u = np.where(ok[i], self._ewma[d[i], s] / self._se[s], np.nan)[None, :]
            if other[direction] is not None:
                u = self._sided(u, other[direction][i][None, :], direction)
            r = None if rel is None else rel[i][None, :]
            res = subset_scan(direction * u, self.min_members, self.max_fraction, self.winsor, scale=r,
                              penalty=self.penalty)
            cols = self._extend(direction * u[0], None if r is None else r[0], res)
            out.append(Nomination(row=int(rows[i]), direction=direction, scale=s,
                                  members=devices[rows[i], cols].astype(np.int64), evidence=float(best[i])))
        return out

    @staticmethod
    def _sided(u: np.ndarray, other: np.ndarray, direction: int) -> np.ndarray:
        """``u`` for the scan of one side: devices alarmed the other way (``other``) count at most at zero."""
        return np.where(other, np.minimum(u, 0.0) if direction > 0 else np.maximum(u, 0.0), u)

    def _extend(self, u: np.ndarray, rel: np.ndarray | None, res) -> np.ndarray:
        """The scan's set, and after it (in its order) every further device standing out from the
        group's median by ``extend_z`` of its own standard errors in the set's direction and lying
        within ``winsor`` of the set's weakest member (one shared shift), up to ``max_fraction`` of
        the group: the scan stops at the set that first crosses the threshold, often its luckiest
        members; the others are out as clearly, only with less evidence."""
        k = int(res.k[0])
        valid = np.isfinite(u)
        n = int(valid.sum())
        r = np.ones(len(u)) if rel is None else np.where(valid, rel, 1.0)
        m = np.where(valid, u * r, np.nan)          # value units, in the group's typical standard errors
        med = float(res.median[0])
        order = res.order[0, :n]
        rest = order[k:]
        weakest = m[order[k - 1]] if k else med
        # standing out, and close to the set's shift: colluders share one value, an episode does not
        out = ((m[rest] - med) / r[rest] >= self.extend_z) & (m[rest] >= weakest - self.winsor)
        room = max(int(np.floor(self.max_fraction * n)) - k, 0)
        return np.r_[order[:k], rest[out][:room]]

    def _scan_side(self, u: np.ndarray, bound: np.ndarray,
                   rel: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(evidence, k, shift) of `subset_scan` on the high side of ``u``, scanning only the rows whose
        evidence ``bound`` reaches the threshold (the margin is far above rounding error); the others get
        (-inf, 0, 0), which no comparison with the threshold can tell from their exact evidence."""
        R = len(u)
        evidence, k, shift = np.full(R, -np.inf), np.zeros(R, int), np.zeros(R)
        maybe = np.flatnonzero(bound >= self.threshold - 1e-6 * (1.0 + abs(self.threshold)))
        if len(maybe):
            res = subset_scan(u[maybe], self.min_members, self.max_fraction, self.winsor,
                              scale=None if rel is None else rel[maybe], penalty=self.penalty)
            evidence[maybe], k[maybe], shift[maybe] = res.evidence, res.k, res.shift
        return evidence, k, shift

    def drain_outcomes(self) -> dict[str, int]:
        """Held sets by outcome (`OUTCOMES`) since the last call (for counters), then zero."""
        out, self._outcomes = self._outcomes, dict.fromkeys(OUTCOMES, 0)
        return out

    def nominate(self, group: int, window: int, nom: Nomination, vouched: bool = False) -> CollusionSet:
        """Open a set from a nomination (it is held until confirmed) and return it. ``vouched``: the
        consensus' history says this is the camp that moved (see ``camp``)."""
        self._split.discard(group)  # one camp is named: the consensus has the other
        self._outcomes["nominated"] += 1
        onset = float(max(window - self.memory_of(nom.scale), 0))
        members = [int(m) for m in nom.members]
        s = CollusionSet(group=group, direction=nom.direction, onset=onset, members=members, score=nom.evidence,
                         scale=nom.scale, nominated=window, new_members=list(members), seen=list(members),
                         vouched=vouched)
        faded = self._faded.pop(group, None)
        if faded is not None and self._resumes(faded, window, nom.direction, members):
            # the same set again (an intermittent set, a poisoner's next episode): its hold goes on
            old = faded[1]
            s.onset, s.shifts = min(onset, old.onset), old.shifts
            s.seen = sorted(set(old.seen).union(members))
            self._outcomes["resumed"] += 1
        self._active[group] = s
        return s

    def _resumes(self, faded: tuple[int, CollusionSet], window: int, direction: int, members: list[int]) -> bool:
        """Whether a nomination is the group's faded set (``faded``: when it faded, the set) come back:
        within ``recur`` windows, the same direction, and at least ``min_members`` devices and half of
        the smaller set in common with it (counting the faded sets whose hold it had resumed)."""
        when, old = faded
        before = set(old.seen)
        common = len(before.intersection(members))
        return (window - when <= self.recur and old.direction == direction and common >= self.min_members
                and 2 * common >= min(len(members), len(before)))

    def update(self, group: int, window: int, devices: np.ndarray, z: np.ndarray,
               scale: np.ndarray | None = None, frozen: np.ndarray | None = None) -> list[CollusionEvent]:
        """One window of one group with an active set: its scored devices, their residuals (``z``, and
        ``scale`` in value units for the homogeneity test; ``frozen``: the residuals against the offsets as
        they stand, where ``z`` carries an alarmed device's offset on by its drift, for the re-check)."""
        s = self._active.get(group)
        scale = np.ones(len(devices)) if scale is None else scale
        if s is None:
            faded = self._faded.get(group)
            if faded is not None and window - faded[0] > self.recur:
                del self._faded[group]  # too old to be resumed: forgotten, and no longer measured
            elif self.measure_faded and faded is not None:
                self._measure(faded[1], devices, z, scale)  # while remembered: its pauses count too
            return []
        if not s.confirmed:
            return self._confirm(s, window, devices, z, scale)
        return self._grow(s, window, devices, z, scale, z if frozen is None else frozen)

    def _test_var(self, own2: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The homogeneity test's variance of each measured shift: its standard error squared plus
        ``tolerance`` of the device's own noise (honest devices of a group are not perfectly alike)."""
        return own2 / n + self.tolerance ** 2 * own2

    @staticmethod
    def _measure(s: CollusionSet, devices: np.ndarray, z: np.ndarray, scale: np.ndarray) -> None:
        """Add one window to the shifts measured for a held (or remembered) set, every device of its group."""
        zs, sc2 = (z * scale).tolist(), (scale * scale).tolist()
        for i, d in enumerate(devices.tolist()):
            acc = s.shifts.setdefault(d, [0.0, 0.0, 0.0])
            acc[0] += zs[i]
            acc[1] += 1
            acc[2] += sc2[i]

    def measured_groups(self) -> list[int]:
        """Groups to pass to `update` this window: those with an active set and (with ``measure_faded``)
        those remembering a faded one."""
        groups = [s.group for s in self._active.values()]
        return groups + [g for g in self._faded if g not in self._active] if self.measure_faded else groups

    def _still(self, s: CollusionSet) -> int:
        """Members whose mean residual still stands out in the set's direction (present this window or not)."""
        members = np.asarray(s.members, dtype=np.int64)
        return int((s.direction * self.standing(members, s.scale) >= self.still_z).sum())

    def _confirm(self, s: CollusionSet, window: int, devices: np.ndarray, z: np.ndarray,
                 scale: np.ndarray) -> list[CollusionEvent]:
        """Hold a nominated set until its members' shifts are known well; alert if they agree."""
        # every device of the group is measured over the hold: the members for the test, the others
        # to see whether the deviation is one shift or an event of many sizes (see ``outsiders``)
        self._measure(s, devices, z, scale)
        if self._still(s) < self.min_members:
            self._close(s)  # the deviation faded before it could be confirmed: transient
            self._outcomes["faded"] += 1
            if self.recur:  # unless it comes back: remembered, with what its hold measured
                self._faded[s.group] = (window, s)
            return []
        ids = np.fromiter(s.shifts, dtype=np.int64, count=len(s.shifts))
        acc = np.array(list(s.shifts.values())).reshape(-1, 3)
        mean, own2_all = acc[:, 0] / acc[:, 1], acc[:, 2] / acc[:, 1]   # shift; mean squared noise scale
        var = self._test_var(own2_all, acc[:, 1])
        member = np.isin(ids, s.members)
        counts = acc[member, 1]
        if len(counts) < self.min_members or counts.min() < self.confirm:
            return []
        m, own2 = mean[member], own2_all[member]
        common, q = _agreement(m, var[member])
        # the members must still be shifted, together, over the hold: a long memory can nominate a
        # set whose deviation has just ended (an event's tail), and members agreeing at zero agree
        precision = counts / np.maximum(own2, 1e-300)
        shift_z = s.direction * float(np.sum(precision * m) / np.sqrt(np.sum(precision)))
        # devices outside the set shifted its way over the hold (``join_z`` of their standard errors) by
        # another amount than its members (more than 3 standard deviations of the test away): sun on a
        # wall shifts devices by many sizes, and the scan names the cluster that agrees best
        out = ~member & (acc[:, 1] >= 2)
        t = s.direction * mean[out] / np.sqrt(np.maximum(own2_all[out] / acc[out, 1], 1e-300))
        off2 = (mean[out] - common) ** 2 / np.maximum(var[out], 1e-300)
        outsiders = int(np.sum((t >= self.join_z) & (off2 > 9.0)))
        sigmas = float(np.sum(precision * m) / np.sum(precision) / np.sqrt(np.mean(own2)))  # common shift, own sigmas
        apart = self._apart(s, sigmas, mean, own2_all, acc[:, 1], member)
        why = ("unshifted" if shift_z < self.confirm_z or not apart
               else "heterogeneous" if q > self.homogeneity
               else "outsiders" if outsiders >= self.outsiders > 0
               else "camp" if self._camp(s, common, sigmas, mean, own2_all, acc[:, 1], member) else None)
        if why is not None:
            self._outcomes[why] += 1
            self._close(s)
            self._blocked[s.group] = window + self.cooldown
            return []
        s.confirmed = True
        self._outcomes["alerted"] += 1
        s.homogeneity = q
        s.shift = sigmas
        s.sums.clear()
        s.shifts.clear()  # from now on: the re-check's blocks (see ``recheck``)
        s.core = list(s.members)
        return [CollusionEvent("firing", s, window)]

    def _apart(self, s: CollusionSet, common: float, mean: np.ndarray, own2: np.ndarray, counts: np.ndarray,
               member: np.ndarray) -> bool:
        """Whether the members' common shift over the hold (``common``, in their own sigmas) stands ``gap`` robust
        standard deviations of the rest of the group's shifts beyond the rest's median (always, with
        ``gap`` 0 or fewer than five others measured over half the hold). Honest devices drift apart
        slowly, and a long memory can nominate a group's tail, its fastest drifters one way, which is
        shifted by little more than the rest spread; colluders sharing one offset stand apart."""
        if self.gap <= 0:
            return True
        rest = ~member & (counts >= self.confirm // 2)
        if rest.sum() < 5:
            return True
        r = mean[rest] / np.sqrt(np.maximum(own2[rest], 1e-300))
        mid = float(np.median(r))
        spread = 1.4826 * float(np.median(np.abs(r - mid)))
        return s.direction * (common - mid) >= self.gap * spread

    def _camp(self, s: CollusionSet, common: float, sigmas: float, mean: np.ndarray, own2: np.ndarray,
              counts: np.ndarray, member: np.ndarray) -> bool:
        """Whether the set, with the devices standing with it, makes up ``camp`` of the group's devices
        measured over (half) the hold: then it is one of two camps, or the majority, and nothing says it
        is the one that lies: it is dropped, not alerted. Only within the spread: a common shift
        (``sigmas``, in the members' own sigmas) of `TAKEOVER_GAP` or more is left to the consensus'
        history, and so is a set that history vouched for."""
        if self.camp <= 0 or s.vouched or abs(sigmas) >= TAKEOVER_GAP:
            return False
        held, standing, measured = self._camp_count(s, common, mean, own2, counts, member)
        return held + standing >= self.camp * measured

    def _camp_count(self, s: CollusionSet, common: float, mean: np.ndarray, own2: np.ndarray,
                    counts: np.ndarray, member: np.ndarray) -> tuple[int, int, int]:
        """(members, devices standing with them, devices) measured over half the hold or more. Standing
        with the set: shifted its way over the hold by ``extend_z`` of their standard errors and by at
        least half its common shift (``common``, value units)."""
        measured = counts >= max(2, self.confirm // 2)
        t = s.direction * mean / np.sqrt(np.maximum(own2 / np.maximum(counts, 1), 1e-300))
        standing = ~member & measured & (t >= self.extend_z) & (s.direction * (mean - 0.5 * common) >= 0)
        return int((member & measured).sum()), int(standing.sum()), int(measured.sum())

    def _grow(self, s: CollusionSet, window: int, devices: np.ndarray, z: np.ndarray,
              scale: np.ndarray, frozen: np.ndarray) -> list[CollusionEvent]:
        if self.recheck and self._disagrees(s, window, devices, frozen, scale):
            self._close(s)
            s.ended = "heterogeneous"
            return [CollusionEvent("resolved", s, window)]
        joined = []
        for d, zi in zip(devices.tolist(), (s.direction * z).tolist()):
            acc = s.sums.setdefault(d, [0.0, 0.0])
            acc[0] += zi
            acc[1] += 1
            if d not in s.members and acc[1] >= 3 and acc[0] / acc[1] ** 0.5 >= self.join_z:
                joined.append(d)
        if self._quiet is not None:  # a camouflage member: quiet since the set's onset at the earliest (less the
            # longest memory: the onset the set has may be the shortest memory before its nomination); a device
            # quiet since long before is not its lead
            quiet = self._quiet.alarmed(devices) & (self._quiet.onset(devices) >= s.onset - self.memory_of(2))
            mimics = [d for d in devices[quiet].tolist() if d not in s.members and d not in joined]
        else:
            mimics = []
        s.quiet = 0 if self._still(s) >= self.min_members else s.quiet + 1
        if s.quiet >= self.quiet:
            self._close(s)
            s.ended = "quiet"
            return [CollusionEvent("resolved", s, window)]
        # the shifted members (not the camouflage ones, which stay in the consensus) make up at most
        # max_fraction of the group: all who would join this window, or none of them
        if len(s.members) - len(s.mimics) + len(joined) > self.max_fraction * len(devices):
            joined = []
        joined += mimics
        if joined:
            s.members.extend(joined)
            s.new_members = joined
            s.mimics.extend(mimics)
            return [CollusionEvent("firing", s, window)]
        return []

    def _disagrees(self, s: CollusionSet, window: int, devices: np.ndarray, z: np.ndarray,
                   scale: np.ndarray) -> bool:
        """Whether an alerted set's members have disagreed on their shift ``recheck`` blocks in a row.

        The shifts of the members it was alerted with (not those who joined since: a camouflage member
        sits on the pulled consensus, shifted by another amount) are measured again over blocks of
        ``confirm`` windows, as over the hold, and tested the same way (chi-square per degree of freedom
        above ``homogeneity``; members measured over at least half the block). Colluders sharing one
        offset keep agreeing; honest devices alerted by mistake drift apart, each against the offset it
        had when the set was nominated (members do not learn), and without this such a set could stand
        for months. ``z``: against the offsets as they stand, not carried on by their drift (the carry
        would hide the very drift that parts honest members)."""
        member = np.isin(devices, s.core)
        self._measure(s, devices[member], z[member], scale[member])
        if s.block < 0:
            s.block = window
        if window - s.block + 1 < self.confirm:
            return False
        acc = np.array(list(s.shifts.values())).reshape(-1, 3)
        s.shifts.clear()
        s.block = window + 1
        acc = acc[acc[:, 1] >= max(2, self.confirm // 2)]
        if len(acc) < self.min_members:
            return False  # too few members measured to say
        mean, own2 = acc[:, 0] / acc[:, 1], acc[:, 2] / acc[:, 1]
        _, q = _agreement(mean, self._test_var(own2, acc[:, 1]))
        s.failed = s.failed + 1 if q > self.homogeneity else 0
        return s.failed >= self.recheck

    def forget_group(self, group: int, devices: np.ndarray, window: int) -> list[CollusionEvent]:
        """Drop what is known about one group (its devices are being learned afresh): its set, if
        any (``resolved`` if it had been alerted), its split and cooldown, its devices' means."""
        s = self._active.pop(group, None)
        if s is not None and not s.confirmed:
            self._outcomes["relearned"] += 1
        self._split.discard(group)
        self._blocked.pop(group, None)
        self._faded.pop(group, None)
        self._ewma[devices] = 0.0
        if self._quiet is not None:
            self._quiet.reset(devices)
        return [CollusionEvent("resolved", s, window)] if s is not None and s.confirmed else []

    def _close(self, s: CollusionSet) -> None:
        """Forget a set; its members' evidence has been used, so their means start again from zero
        (a long memory still holding an ended deviation does not re-nominate the same set)."""
        del self._active[s.group]
        self._ewma[np.asarray(s.members, dtype=np.int64)] = 0.0

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"ewma": self._ewma.tolist(), "active": [_set_state(s) for s in self._active.values()],
                "faded": [[w, _set_state(s)] for w, s in self._faded.values()],
                "blocked": [[g, w] for g, w in self._blocked.items()], "split": sorted(self._split),
                **({"mimic": self._quiet.state_dict()} if self._quiet is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        self._ewma = np.asarray(state.get("ewma", []), dtype=np.float64).reshape(-1, 3)
        self._active = {s["group"]: _set_from(s) for s in state["active"]}
        self._faded = {s["group"]: (int(w), _set_from(s)) for w, s in state.get("faded", [])}
        self._blocked = {int(g): int(w) for g, w in state.get("blocked", [])}
        self._split = {int(g) for g in state.get("split", [])}
        if self._quiet is not None:
            self._quiet.load_state_dict(state.get("mimic", {}))
            self._quiet.resize(len(self._ewma))


def _agreement(shift: np.ndarray, var: np.ndarray) -> tuple[float, float]:
    """The members' common shift (inverse-variance weighted) and the chi-square per degree of freedom
    of their shifts around it.

    >>> common, q = _agreement(np.array([1.0, 1.2, 0.8]), np.array([0.01, 0.01, 0.01]))
    >>> round(common, 6), round(q, 6)
    (1.0, 4.0)
    """
    w = 1.0 / np.maximum(var, 1e-300)
    common = float(np.sum(w * shift) / np.sum(w))
    return common, float(np.sum(w * (shift - common) ** 2)) / (len(shift) - 1)


def _set_state(s: CollusionSet) -> dict:
    """A set as plain JSON-able numbers."""
    return {"group": s.group, "direction": s.direction, "onset": s.onset, "members": s.members,
            "score": s.score, "scale": s.scale, "quiet": s.quiet, "sums": [[d, v[0], v[1]] for d, v in s.sums.items()],
            "confirmed": s.confirmed, "homogeneity": s.homogeneity, "shift": s.shift, "nominated": s.nominated,
            "new_members": list(s.new_members), "shifts": [[d, *v] for d, v in s.shifts.items()],
            "seen": list(s.seen), "core": list(s.core), "block": s.block, "failed": s.failed,
            "ended": s.ended, "vouched": s.vouched, "level_restored": s.level_restored, "mimics": list(s.mimics)}


def _set_from(s: dict) -> CollusionSet:
    """The inverse of `_set_state`."""
    sums = {int(d): [a, n] for d, a, n in s["sums"]}
    shifts = {int(d): [a, n, v] for d, a, n, v in s.get("shifts", [])}
    return CollusionSet(**{**s, "sums": sums, "shifts": shifts, "members": list(s["members"]),
                           "new_members": list(s.get("new_members", [])), "seen": list(s.get("seen", s["members"])),
                           "mimics": list(s.get("mimics", []))})
