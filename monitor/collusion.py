"""Devices of one group that deviate together: named as one colluding set.

First version: a device is a *candidate* when one side of its mean-shift
CUSUM is above ``candidate * h``. Candidates of one group on the same side
whose runs began within ``onset_tolerance`` windows of each other, at least
``min_members`` of them, no more than ``max_fraction`` of the group's
reporting devices, and whose statistics add up to ``pooled * h``, form a
colluding set. The set grows as more members cross, and is resolved after
``quiet`` windows with fewer than ``min_members`` members still deviating.
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
    new_members: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CollusionEvent:
    state: str                   # "firing" (new or grown) or "resolved"
    set: CollusionSet
    window: int


class CollusionDetector:
    """Finds sets of devices whose residuals shift the same way at the same time.

    >>> det = CollusionDetector(h=10)
    >>> ev = det.update(group=0, window=40, devices=np.arange(6), pos=np.array([9, 8, 0, 1, 0, 0.]),
    ...                 neg=np.zeros(6), pos_start=np.array([20, 22, 0, 39, 0, 0.]), neg_start=np.zeros(6))
    >>> [(e.state, e.set.members, e.set.direction, e.set.onset) for e in ev]
    [('firing', [0, 1], 1, 20.0)]
    """

    def __init__(self, h: float = 11.8, candidate: float = 0.6, pooled: float = 1.5, min_members: int = 2,
                 max_fraction: float = 0.5, onset_tolerance: int = 10, quiet: int = 10) -> None:
        if not (h > 0 and 0 < candidate <= 1 and pooled > 0 and min_members >= 2
                and 0 < max_fraction <= 1 and onset_tolerance >= 0 and quiet >= 1):
            raise ValueError("invalid CollusionDetector parameters")
        self.h, self.candidate, self.pooled, self.min_members = h, candidate, pooled, min_members
        self.max_fraction, self.onset_tolerance, self.quiet = max_fraction, onset_tolerance, quiet
        self._active: dict[int, CollusionSet] = {}

    def members(self) -> np.ndarray:
        """Device indices of every active set."""
        out = [m for s in self._active.values() for m in s.members]
        return np.asarray(out, dtype=np.int64)

    def active(self) -> list[CollusionSet]:
        return list(self._active.values())

    def update(self, group: int, window: int, devices: np.ndarray, pos: np.ndarray, neg: np.ndarray,
               pos_start: np.ndarray, neg_start: np.ndarray) -> list[CollusionEvent]:
        """One window of one group: its reporting devices and their CUSUM sides."""
        events: list[CollusionEvent] = []
        thr = self.candidate * self.h
        current = self._active.get(group)
        if current is not None:
            side, start = (pos, pos_start) if current.direction > 0 else (neg, neg_start)
            near = np.abs(start - current.onset) <= self.onset_tolerance
            cand = (side >= thr) & near
            joined = [int(d) for d in devices[cand] if int(d) not in current.members]
            still = int(np.isin(current.members, devices[side > 1.0]).sum())
            current.quiet = 0 if still >= self.min_members else current.quiet + 1
            if current.quiet >= self.quiet:
                del self._active[group]
                events.append(CollusionEvent("resolved", current, window))
                return events
            if joined and len(current.members) + len(joined) <= self.max_fraction * len(devices):
                current.members.extend(joined)
                current.new_members = joined
                current.score = float(side[np.isin(devices, current.members)].sum())
                events.append(CollusionEvent("firing", current, window))
            return events
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
            found = CollusionSet(group=group, direction=direction, onset=float(start[cand].min()),
                                 members=[int(d) for d in devices[cand]], score=score)
            found.new_members = list(found.members)
            self._active[group] = found
            events.append(CollusionEvent("firing", found, window))
            break
        return events

    def state_dict(self) -> dict:
        return {"active": [
            {"group": s.group, "direction": s.direction, "onset": s.onset, "members": s.members,
             "score": s.score, "quiet": s.quiet} for s in self._active.values()]}

    def load_state_dict(self, state: dict) -> None:
        self._active = {s["group"]: CollusionSet(**s) for s in state["active"]}
