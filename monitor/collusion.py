"""Devices of one group that deviate together: named as one colluding set.

First version: a device is a *candidate* when one side of its mean-shift
CUSUM is above ``candidate * h``. Candidates of one group on the same side
whose runs began within ``onset_tolerance`` windows of their median start,
at least ``min_members`` of them, no more than ``max_fraction`` of the
group's reporting devices, and whose statistics add up to ``pooled * h``,
form a colluding set with that median start as its onset.

Colluders who share one offset move by the *same* amount; honest devices
that deviate together for a physical reason (sun on one wall, an open door)
move by different amounts. So a new set is first held for ``confirm``
windows while each founder's shift since the onset is estimated, then
alerted only if the shifts agree: the chi-square of their spread around the
common shift, per degree of freedom, at most ``homogeneity``. A set whose
members disagree is dropped and the group is not re-examined for
``cooldown`` windows.

Once a set exists, the set's onset is a known change point, so every device
of the group is tested against it: the sum of its standardised residuals
since the onset, over the square root of their count (N(0, 1) for an honest
device), joins it to the set past ``join_z`` in the set's direction. The set
is resolved after ``quiet`` windows with fewer than ``min_members`` members
still deviating.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class CollusionSet:
    """An active colluding set of one group (plain numbers: serialisable)."""

    group: int
    direction: int               # +1 reads high, -1 reads low
    onset: float                 # window where the set began deviating
    members: list[int]           # device indices
    score: float = 0.0           # pooled CUSUM evidence
    quiet: int = 0               # windows with too few members still deviating
    sums: dict[int, list[float]] = field(default_factory=dict)  # device -> [sum z, count] since onset
    confirmed: bool = False      # passed the homogeneity test (alerted)
    shifts: dict[int, list[float]] = field(default_factory=dict)  # founder -> [sum shift, count, sum scale^2]
    new_members: list[int] = field(default_factory=list)
    homogeneity: float = 0.0     # chi-square per degree of freedom of the founders' shifts


@dataclass(frozen=True)
class CollusionEvent:
    state: str                   # "firing" (new or grown) or "resolved"
    set: CollusionSet
    window: int


class CollusionDetector:
    """Finds sets of devices whose residuals shift the same way at the same time.

    >>> det = CollusionDetector(h=10)
    >>> z = np.array([2.0, 2.0, 0.1, 0.5, -0.3, 0.0])
    >>> ev = det.update(group=0, window=40, devices=np.arange(6), z=z, pos=np.array([9, 8, 0, 1, 0, 0.]),
    ...                 neg=np.zeros(6), pos_start=np.array([20, 22, 0, 39, 0, 0.]), neg_start=np.zeros(6))
    >>> [(e.state, e.set.members, e.set.direction, e.set.onset) for e in ev]
    [('firing', [0, 1], 1, 21.0)]
    """

    def __init__(self, h: float = 11.8, candidate: float = 0.75, pooled: float = 1.5, min_members: int = 2,
                 max_fraction: float = 0.5, onset_tolerance: int = 5, join_z: float = 5.0, quiet: int = 10,
                 confirm: int = 0, homogeneity: float = 4.0, cooldown: int = 60) -> None:
        if not (h > 0 and 0 < candidate <= 1 and pooled > 0 and min_members >= 2 and 0 < max_fraction <= 1
                and onset_tolerance >= 0 and join_z > 0 and quiet >= 1 and confirm >= 0 and homogeneity > 0
                and cooldown >= 0):
            raise ValueError("invalid CollusionDetector parameters")
        self.h, self.candidate, self.pooled, self.min_members = h, candidate, pooled, min_members
        self.max_fraction, self.onset_tolerance, self.quiet = max_fraction, onset_tolerance, quiet
        self.join_z, self.confirm, self.homogeneity, self.cooldown = join_z, confirm, homogeneity, cooldown
        self._blocked: dict[int, int] = {}  # group -> window until which no set is formed
        self._active: dict[int, CollusionSet] = {}

    def members(self) -> np.ndarray:
        """Device indices of every active set."""
        out = [m for s in self._active.values() for m in s.members]
        return np.asarray(out, dtype=np.int64)

    def active(self) -> list[CollusionSet]:
        return list(self._active.values())

    def update(self, group: int, window: int, devices: np.ndarray, z: np.ndarray, pos: np.ndarray,
               neg: np.ndarray, pos_start: np.ndarray, neg_start: np.ndarray,
               scale: np.ndarray | None = None) -> list[CollusionEvent]:
        """One window of one group: its scored devices, their residuals (``z``, and ``scale`` in
        value units for the homogeneity test) and CUSUM sides."""
        scale = np.ones(len(devices)) if scale is None else scale
        current = self._active.get(group)
        if current is not None and not current.confirmed:
            return self._confirm(current, window, devices, z, scale, pos, neg)
        if current is not None:
            return self._grow(current, window, devices, z, pos, neg)
        if self._blocked.get(group, -1) >= window:
            return []
        thr = self.candidate * self.h
        for direction, side, start in ((1, pos, pos_start), (-1, neg, neg_start)):
            cand = np.flatnonzero(side >= thr)
            if len(cand) < self.min_members:
                continue
            onset = float(np.median(start[cand]))
            cand = cand[np.abs(start[cand] - onset) <= self.onset_tolerance]
            if len(cand) < self.min_members or len(cand) > self.max_fraction * len(devices):
                continue
            score = float(side[cand].sum())
            if score < self.pooled * self.h:
                continue
            found = CollusionSet(group=group, direction=direction, onset=float(np.floor(np.median(start[cand]))),
                                 members=[int(d) for d in devices[cand]], score=score)
            found.new_members = list(found.members)
            self._active[group] = found
            if self.confirm == 0:
                found.confirmed = True
                return [CollusionEvent("firing", found, window)]
            return self._confirm(found, window, devices, z, scale, pos, neg)
        return []

    def _confirm(self, s: CollusionSet, window: int, devices: np.ndarray, z: np.ndarray, scale: np.ndarray,
                 pos: np.ndarray, neg: np.ndarray) -> list[CollusionEvent]:
        """Hold a new set until its founders' shifts can be compared; alert if they agree."""
        side = pos if s.direction > 0 else neg
        index = {d: i for i, d in enumerate(devices.tolist())}
        for d in s.members:
            i = index.get(d)
            if i is None:
                continue
            acc = s.shifts.setdefault(d, [0.0, 0.0, 0.0])
            acc[0] += float(z[i] * scale[i])
            acc[1] += 1
            acc[2] += float(scale[i] ** 2)
        if int(np.isin(s.members, devices[side > 1.0]).sum()) < self.min_members:
            del self._active[s.group]  # the deviation ended before it could be confirmed: transient
            return []
        counts = [acc[1] for acc in s.shifts.values()]
        if len(counts) < self.min_members or min(counts) < self.confirm:
            return []
        m = np.array([acc[0] / acc[1] for acc in s.shifts.values()])
        se2 = np.array([acc[2] / acc[1] / acc[1] for acc in s.shifts.values()])
        w = 1.0 / np.maximum(se2, 1e-300)
        common = float(np.sum(w * m) / np.sum(w))
        q = float(np.sum(w * (m - common) ** 2)) / (len(m) - 1)
        s.sums.clear()
        if q > self.homogeneity:
            del self._active[s.group]
            self._blocked[s.group] = window + self.cooldown
            return []
        s.confirmed = True
        s.homogeneity = q
        return [CollusionEvent("firing", s, window)]

    def _grow(self, s: CollusionSet, window: int, devices: np.ndarray, z: np.ndarray, pos: np.ndarray,
              neg: np.ndarray) -> list[CollusionEvent]:
        side = pos if s.direction > 0 else neg
        joined = []
        for d, zi in zip(devices.tolist(), (s.direction * z).tolist()):
            acc = s.sums.setdefault(d, [0.0, 0.0])
            acc[0] += zi
            acc[1] += 1
            if d not in s.members and acc[1] >= 3 and acc[0] / acc[1] ** 0.5 >= self.join_z:
                joined.append(d)
        still = int(np.isin(s.members, devices[side > 1.0]).sum())
        s.quiet = 0 if still >= self.min_members else s.quiet + 1
        if s.quiet >= self.quiet:
            del self._active[s.group]
            return [CollusionEvent("resolved", s, window)]
        if joined and len(s.members) + len(joined) <= self.max_fraction * len(devices):
            s.members.extend(joined)
            s.new_members = joined
            s.score = float(side[np.isin(devices, s.members)].sum())
            return [CollusionEvent("firing", s, window)]
        return []

    def state_dict(self) -> dict:
        return {"active": [
            {"group": s.group, "direction": s.direction, "onset": s.onset, "members": s.members,
             "score": s.score, "quiet": s.quiet, "sums": [[d, v[0], v[1]] for d, v in s.sums.items()],
             "confirmed": s.confirmed, "homogeneity": s.homogeneity,
             "shifts": [[d, *v] for d, v in s.shifts.items()]}
            for s in self._active.values()], "blocked": [[g, w] for g, w in self._blocked.items()]}

    def load_state_dict(self, state: dict) -> None:
        self._active = {}
        for s in state["active"]:
            sums = {int(d): [a, n] for d, a, n in s["sums"]}
            shifts = {int(d): [a, n, v] for d, a, n, v in s.get("shifts", [])}
            self._active[s["group"]] = CollusionSet(**{**s, "sums": sums, "shifts": shifts})
        self._blocked = {int(g): int(w) for g, w in state.get("blocked", [])}
