"""Device restarts, seen in the readings' sequence numbers.

A device that reboots starts counting its readings again from zero. A
sequence number that falls by more than ``min_drop`` below the previous one
from the same device, on a reading that is *newer* than that one, is a
restart; a reading delivered late (out of order, or buffered through a
network gap and forwarded later) is older than what came before it. Pure
numpy over a micro-batch, in message order. State per device: the last
sequence number (-1: none yet) and event time seen.

>>> t = RestartTracker(min_drop=32)
>>> t.resize(2)
>>> dev, seq = np.array([0, 0, 1, 0, 0, 0]), np.array([500, 501, 7, 460, 502, 2])
>>> ts = np.array([500.0, 501.0, 7.0, 460.0, 502.0, 600.0])  # 460: forwarded late, 2: after a reboot
>>> t.observe(dev, seq, ts).tolist()
[False, False, False, False, False, True]
"""

from __future__ import annotations

import numpy as np


class RestartTracker:
    def __init__(self, min_drop: int = 32) -> None:
        if min_drop < 1:
            raise ValueError("min_drop must be at least 1")
        self.min_drop = min_drop
        self._last = np.full(0, -1, np.int64)
        self._last_ts = np.full(0, -np.inf)

    def resize(self, n: int) -> None:
        if n > len(self._last):
            grow = max(n, 2 * len(self._last)) - len(self._last)
            self._last = np.r_[self._last, np.full(grow, -1, np.int64)]
            self._last_ts = np.r_[self._last_ts, np.full(grow, -np.inf)]

    def observe(self, devices: np.ndarray, seq: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Per reading: is it the first one after a restart? (``seq`` -1: unknown, never a restart.)"""
        has = seq >= 0
        out = np.zeros(len(seq), bool)
        if not has.any():
            return out
        idx = np.flatnonzero(has)
        d, s, t = devices[idx], seq[idx], ts[idx]
        order = np.argsort(d, kind="stable")  # per device, in message order
        d, s, t, idx = d[order], s[order], t[order], idx[order]
        first = np.r_[True, d[1:] != d[:-1]]
        prev = np.where(first, self._last[d], np.r_[0, s[:-1]])
        prev_ts = np.where(first, self._last_ts[d], np.r_[0.0, t[:-1]])
        out[idx] = (prev >= 0) & (s < prev - self.min_drop) & (t > prev_ts)
        last = np.r_[first[1:], True]  # the last reading of each device
        self._last[d[last]] = s[last]
        self._last_ts[d[last]] = t[last]
        return out

    def state_dict(self) -> dict:
        return {"last": self._last.tolist(), "last_ts": [None if not np.isfinite(x) else float(x) for x in self._last_ts]}

    def load_state_dict(self, state: dict) -> None:
        self._last = np.asarray(state["last"], np.int64)
        self._last_ts = np.array([-np.inf if x is None else x for x in state.get("last_ts", [None] * len(self._last))],
                                 dtype=float)
