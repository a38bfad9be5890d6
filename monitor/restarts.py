"""Device restarts, seen in the readings' sequence numbers.

A device that reboots starts counting its readings again from zero. A
sequence number that falls by more than ``min_drop`` below the last one seen
from the same device is a restart; a reading merely delivered late (out of
order) falls by a few at most. Pure numpy over a micro-batch, in message
order. State per device: the last sequence number seen (-1: none yet).

>>> t = RestartTracker(min_drop=32)
>>> t.resize(2)
>>> t.observe(np.array([0, 0, 1, 0, 0]), np.array([500, 501, 7, 499, 2])).tolist()
[False, False, False, False, True]
"""

from __future__ import annotations

import numpy as np


class RestartTracker:
    def __init__(self, min_drop: int = 32) -> None:
        if min_drop < 1:
            raise ValueError("min_drop must be at least 1")
        self.min_drop = min_drop
        self._last = np.full(0, -1, np.int64)

    def resize(self, n: int) -> None:
        if n > len(self._last):
            self._last = np.r_[self._last, np.full(max(n, 2 * len(self._last)) - len(self._last), -1, np.int64)]

    def observe(self, devices: np.ndarray, seq: np.ndarray) -> np.ndarray:
        """Per reading: is it the first one after a restart? (``seq`` -1: unknown, never a restart.)"""
        has = seq >= 0
        out = np.zeros(len(seq), bool)
        if not has.any():
            return out
        idx = np.flatnonzero(has)
        d, s = devices[idx], seq[idx]
        order = np.argsort(d, kind="stable")  # per device, in message order
        d, s, idx = d[order], s[order], idx[order]
        first = np.r_[True, d[1:] != d[:-1]]
        prev = np.where(first, self._last[d], np.r_[0, s[:-1]])
        out[idx] = (prev >= 0) & (s < prev - self.min_drop)
        last = np.r_[first[1:], True]  # the last reading of each device
        self._last[d[last]] = s[last]
        return out

    def state_dict(self) -> dict:
        return {"last": self._last.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self._last = np.asarray(state["last"], np.int64)
