"""A group's offset level from before a colluding set pulled it: two snapshots of each device's
learned offset, and the common shift its honest devices have learned since.

A set that shifts its readings pulls the consensus while it is in it, and every honest device's
offset learns that pull (its residuals read low). Once the set is out, the honest offsets still
carry the pull, and a common shift of a group's offsets is a shift of its consensus level that no
residual shows, so nothing learns it back (see ``Pipeline._pin_offsets``). When a set is
nominated, the monitor compares its group's other devices' offsets with a snapshot from before the
set's onset: their median change is the pull they learned, and moving every offset of the group
back by it restores the level without changing any residual. The members' own snapshots from
before the onset are kept while they are in a set (what their offsets were before they learned
their lie), for the pin's median.

Snapshots move with every common shift of a group's offsets (the pin's, a restore: kept as one
running sum per group), so a change since a snapshot is what was learned, not where the level was
moved.

>>> snaps = OffsetSnapshots(every=10)
>>> snaps.resize(n_devices=4, n_groups=1)
>>> members = np.array([[0, 1, 2, 3]])
>>> snaps.due(np.array([0]), np.array([0])).tolist()
[True]
>>> snaps.take(np.array([0]), np.array([0]), members, np.zeros((1, 4)), np.ones((1, 4), bool))
>>> offsets = np.array([-0.3, -0.3, -0.2, 1.0])  # three honest devices learned the pull, one lies
>>> k = snaps.slot(0, since=5)
>>> round(snaps.learned_shift(0, k, np.array([0, 1, 2]), offsets[:3]), 3)
-0.3
>>> snaps.hold(np.array([3]), k)
>>> snaps.shift(np.array([0]), np.array([0.5]))  # the group's offsets all moved by 0.5
>>> snaps.before(np.array([2, 3]), np.array([0, 0]), offsets[2:] + 0.5, np.array([False, True])).tolist()
[0.3, 0.5]
"""

from __future__ import annotations

import numpy as np


class OffsetSnapshots:
    """Per device two snapshots of its learned offset, taken every ``every`` windows of its group
    (the newer one 0 to ``every`` windows old, the older one ``every`` to twice that), NaN for a
    device not yet warm when it was taken. 8 bytes a device (two float32); per group the windows
    they were taken at and the common shift of its offsets since (snapshots are kept without it)."""

    def __init__(self, every: int = 128) -> None:
        if every < 1:
            raise ValueError("OffsetSnapshots needs every >= 1")
        self.every = every
        self._snap = np.full((0, 2), np.nan, np.float32)   # per device: [newer, older]
        self._when = np.full((0, 2), -1, np.int64)          # per group: the windows they were taken at
        self._gauge = np.zeros(0)                            # per group: the sum of common shifts of its offsets

    def resize(self, n_devices: int, n_groups: int) -> None:
        if n_devices > len(self._snap):
            size = max(n_devices, 2 * len(self._snap))
            self._snap = np.r_[self._snap, np.full((size - len(self._snap), 2), np.nan, np.float32)]
        if n_groups > len(self._when):
            size = max(n_groups, 2 * len(self._when))
            self._when = np.r_[self._when, np.full((size - len(self._when), 2), -1, np.int64)]
            self._gauge = np.r_[self._gauge, np.zeros(size - len(self._gauge))]

    def due(self, groups: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Per row: whether its group's newer snapshot is ``every`` windows old (or missing)."""
        return (self._when[groups, 0] < 0) | (windows >= self._when[groups, 0] + self.every)

    def take(self, groups: np.ndarray, windows: np.ndarray, members: np.ndarray, offsets: np.ndarray,
             warm: np.ndarray, held: np.ndarray | None = None) -> None:
        """Snapshot these groups (rows): ``members`` their devices (-1 padded), ``offsets`` and ``warm``
        (whether the offset is learned enough to keep) of the same shape; ``held`` devices (in a set)
        keep the snapshots they have."""
        self._when[groups, 1] = self._when[groups, 0]
        self._when[groups, 0] = windows
        ok = (members >= 0) if held is None else (members >= 0) & ~held
        d = members[ok]
        self._snap[d, 1] = self._snap[d, 0]
        here = np.broadcast_to(self._gauge[groups][:, None], members.shape)[ok]
        self._snap[d, 0] = np.where(warm[ok], offsets[ok] - here, np.nan)

    def slot(self, group: int, since: float) -> int:
        """The newest snapshot of this group taken at or before window ``since`` (0), else the older one (1)."""
        newer, older = self._when[group]
        return 0 if 0 <= newer <= since or older < 0 else 1

    def learned_shift(self, group: int, slot: int, devices: np.ndarray, offsets: np.ndarray) -> float:
        """The median change of these devices' offsets (``offsets``: theirs now) since snapshot
        ``slot``: 0 when fewer than two have one."""
        change = offsets - (self._snap[devices, slot] + self._gauge[group])
        change = change[np.isfinite(change)]
        return float(np.median(change)) if len(change) >= 2 else 0.0

    def hold(self, devices: np.ndarray, slot: int) -> None:
        """These devices joined a set: keep their snapshot ``slot`` (from before its onset) in both."""
        self._snap[devices, 1 - slot] = self._snap[devices, slot]

    def before(self, devices: np.ndarray, groups: np.ndarray, offsets: np.ndarray, held: np.ndarray) -> np.ndarray:
        """Per device (of group ``groups``) its offset, or for a ``held`` one (in a set) its newer
        snapshot where it has one: from before its set's onset (see ``hold``), or for a device that
        joined a set later, the last one taken before it joined."""
        snap = self._snap[devices, 0] + self._gauge[groups]
        return np.where(held & np.isfinite(snap), snap, offsets)

    def shift(self, groups: np.ndarray, delta: np.ndarray) -> None:
        """Every offset of these (distinct) groups was moved by ``delta``: so are their snapshots."""
        self._gauge[groups] += delta

    def reset(self, devices: np.ndarray) -> None:
        """Forget these devices' snapshots (their group is learned afresh)."""
        self._snap[devices] = np.nan

    def state_dict(self) -> dict:
        return {"every": self.every,
                "snap": [[None if not np.isfinite(x) else float(x) for x in row] for row in self._snap],
                "when": self._when.tolist(), "gauge": self._gauge.tolist()}

    def load_state_dict(self, state: dict) -> None:
        snap = state.get("snap", [])
        self._snap = np.array([[np.nan if x is None else x for x in row] for row in snap], np.float32).reshape(-1, 2)
        self._when = np.array(state.get("when", []), np.int64).reshape(-1, 2)
        self._gauge = np.array(state.get("gauge", [0.0] * len(self._when)), np.float64)
