"""Stable integer indices for groups and devices, so that the maths runs on arrays."""

from __future__ import annotations

from itertools import repeat
from typing import Sequence

import numpy as np

_NONE: dict[str, int] = {}  # the devices of a group not seen yet


class Registry:
    """Maps group names and (group, device_id) pairs to dense integer indices.

    A device is identified by its group and id: the same id in two groups is
    two devices. Indices never change once given, so per-device state arrays
    can be indexed by them.

    >>> reg = Registry()
    >>> reg.index(["g1", "g1", "g2"], ["a", "b", "a"]).tolist()
    [0, 1, 2]
    >>> reg.device_group.tolist(), reg.device_local.tolist()
    ([0, 0, 1], [0, 1, 0])
    """

    def __init__(self) -> None:
        self._groups: dict[str, int] = {}
        self._devices: dict[str, dict[str, int]] = {}  # group name -> device id -> index
        self.group_names: list[str] = []
        self.device_names: list[str] = []
        self._group_size: list[int] = []
        self._device_group: list[int] = []
        self._device_local: list[int] = []
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None
        self._table: np.ndarray | None = None

    def group(self, name: str) -> int:
        idx = self._groups.get(name)
        if idx is None:
            idx = self._groups[name] = len(self.group_names)
            self.group_names.append(name)
            self._group_size.append(0)
            self._table = None
        return idx

    def index(self, groups: Sequence[str], device_ids: Sequence[str]) -> np.ndarray:
        """Device indices for parallel lists of groups and ids, registering new ones."""
        # two plain lookups per reading (group, then id) are cheaper than hashing a (group, id) tuple
        by_group = map(self._devices.get, groups, repeat(_NONE))
        found = np.fromiter(map(dict.get, by_group, device_ids, repeat(-1)), dtype=np.int64, count=len(device_ids))
        for i in np.flatnonzero(found < 0).tolist():  # new devices, in order of first sight
            found[i] = self._register((groups[i], device_ids[i]))
        return found

    def _register(self, key: tuple[str, str]) -> int:
        ids = self._devices.setdefault(key[0], {})
        idx = ids.get(key[1])
        if idx is None:  # (the same new device may appear twice in one batch)
            g = self.group(key[0])
            idx = ids[key[1]] = len(self.device_names)
            self.device_names.append(key[1])
            self._device_group.append(g)
            self._device_local.append(self._group_size[g])
            self._group_size[g] += 1
            self._arrays = self._table = None
        return idx

    @property
    def n_devices(self) -> int:
        return len(self.device_names)

    @property
    def n_groups(self) -> int:
        return len(self.group_names)

    def _cached(self) -> tuple[np.ndarray, np.ndarray]:
        if self._arrays is None:
            self._arrays = (
                np.asarray(self._device_group, dtype=np.int64),
                np.asarray(self._device_local, dtype=np.int64),
            )
        return self._arrays

    @property
    def device_group(self) -> np.ndarray:
        """Group index of every device."""
        return self._cached()[0]

    @property
    def device_local(self) -> np.ndarray:
        """Position of every device inside its group (0, 1, ... in order of first sight)."""
        return self._cached()[1]

    def group_size(self, g: int) -> int:
        return self._group_size[g]

    def members(self, groups: np.ndarray) -> np.ndarray:
        """Every device of these groups, present or not: ``(len(groups), largest group)`` indices,
        -1 where a group has fewer.

        >>> reg = Registry()
        >>> _ = reg.index(["g1", "g2", "g1"], ["a", "a", "b"])
        >>> reg.members(np.array([1, 0])).tolist()
        [[1, -1], [0, 2]]
        >>> reg.members(np.array([reg.group("g3")])).tolist()
        [[-1, -1]]
        """
        if self._table is None:
            dg, dl = self._cached()
            self._table = np.full((self.n_groups, max(self._group_size, default=0)), -1, np.int64)
            self._table[dg, dl] = np.arange(len(dg))
        return self._table[groups]

    def state_dict(self) -> dict:
        return {
            "groups": list(self.group_names),
            "devices": [[self.group_names[g], d] for g, d in zip(self._device_group, self.device_names)],
        }

    @classmethod
    def from_state(cls, state: dict) -> "Registry":
        reg = cls()
        for name in state["groups"]:
            reg.group(name)
        if state["devices"]:
            groups, ids = zip(*state["devices"])
            reg.index(groups, ids)
        return reg
