"""Devices of one group that deviate together: named as one colluding set.

First version: a device is a *candidate* when one side of its mean-shift
CUSUM is above ``candidate * h``. Candidates of one group on the same side
whose runs began within ``onset_tolerance`` windows of their median start,
at least ``min_members`` of them, no more than ``max_fraction`` of the
group's reporting devices, and whose statistics add up to ``pooled * h``,
form a colluding set with that median start as its onset.

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
    new_members: list[int] = field(default_factory=list)


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
                 max_fraction: float = 0.5, onset_tolerance: int = 5, join_z: float = 5.0, quiet: int = 10) -> None:
        if not (h > 0 and 0 < candidate <= 1 and pooled > 0 and min_members >= 2
                and 0 < max_fraction <= 1 and onset_tolerance >= 0 and join_z > 0 and quiet >= 1):
            raise ValueError("invalid CollusionDetector parameters")
        self.h, self.candidate, self.pooled, self.min_members = h, candidate, pooled, min_members
        self.max_fraction, self.onset_tolerance, self.quiet = max_fraction, onset_tolerance, quiet
        self.join_z = join_z
        self._active: dict[int, CollusionSet] = {}

    def members(self) -> np.ndarray:
        """Device indices of every active set."""
        out = [m for s in self._active.values() for m in s.members]
        return np.asarray(out, dtype=np.int64)

    def active(self) -> list[CollusionSet]:
        return list(self._active.values())

    def update(self, group: int, window: int, devices: np.ndarray, z: np.ndarray, pos: np.ndarray,
               neg: np.ndarray, pos_start: np.ndarray, neg_start: np.ndarray) -> list[CollusionEvent]:
        """One window of one group: its scored devices, their residuals and CUSUM sides."""
        current = self._active.get(group)
        if current is not None:
            return self._grow(current, window, devices, z, pos, neg)
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
            found = CollusionSet(group=group, direction=direction, onset=float(np.median(start[cand])),
                                 members=[int(d) for d in devices[cand]], score=score)
            found.new_members = list(found.members)
            self._active[group] = found
            return [CollusionEvent("firing", found, window)]
        return []

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
             "score": s.score, "quiet": s.quiet, "sums": [[d, v[0], v[1]] for d, v in s.sums.items()]}
            for s in self._active.values()]}

    def load_state_dict(self, state: dict) -> None:
        self._active = {}
        for s in state["active"]:
            sums = {int(d): [a, n] for d, a, n in s["sums"]}
            self._active[s["group"]] = CollusionSet(**{**s, "sums": sums})
