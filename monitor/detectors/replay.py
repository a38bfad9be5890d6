"""A device re-sending a stretch of its own past: exact repeats of value sequences."""

from __future__ import annotations

from functools import reduce

import numpy as np

from monitor.detectors.base import Detection, Detector, Observation, put_rows, take_rows

_MIX = np.uint64(0x9E3779B97F4A7C15)
CHANCE_MEMORY = 1024  # windows over which a device's share of chance repeats is averaged


def _hash(last: np.ndarray) -> np.ndarray:
    """A 32-bit fingerprint of each row of float64 values (exact bit patterns)."""
    bits = np.ascontiguousarray(last).view(np.uint64)
    h = np.full(len(last), np.uint64(0xCBF29CE484222325))
    with np.errstate(over="ignore"):
        for j in range(bits.shape[1]):
            h = (h ^ bits[:, j]) * _MIX
            h ^= h >> np.uint64(29)
    return (h >> np.uint64(32)).astype(np.uint32)


def _span(rows: np.ndarray) -> np.ndarray:
    """``np.ptp(rows, axis=1)``, column by column (a reduction along short rows is slow in numpy)."""
    return reduce(np.maximum, rows.T) - reduce(np.minimum, rows.T)


def _words(rows: np.ndarray) -> np.ndarray:
    """Rows of bools as rows of uint64 words (padded with False to a multiple of 8 columns)."""
    pad = -rows.shape[1] % 8
    if pad:
        rows = np.pad(rows, ((0, 0), (0, pad)))
    return rows.view(np.uint64)


class ReplayDetector(Detector):
    """Fingerprints every run of ``k`` consecutive values and remembers the last
    ``capacity`` of them; alarm after ``min_matches`` consecutive windows whose
    ``k``-gram was seen before (and is not constant, which is ``stuck``); off
    after as many consecutive windows without a match.

    A replay of the device's own past is seen only if it repeats a stretch of
    at most ``capacity`` windows ago; older replays show as bias, drift or noise
    against the consensus instead.

    Short sequences survive a stream whose readings fall into windows raggedly
    (a missing or doubled window breaks every sequence spanning it, and a
    replay's gaps fall elsewhere than the original's), but repeat by chance on
    a coarsely quantised sensor, where every short sequence has been seen. So
    each device's share of windows matching by chance (outside alarms, an
    exponential average over ``CHANCE_MEMORY`` windows: ``chance``) is kept, and a
    device repeating itself in more than ``max_chance`` of its windows is not
    called a replay at all (exact repeats tell nothing there); nor is any
    device before it has sent ``capacity`` windows.

    A device re-sending another device's readings repeats that device's
    sequences instead: ``source`` finds it (or a replay of the device's own
    past, before three windows in a row have matched), asked about devices
    whose readings have just shifted (a comparison of rings, too dear for
    every window).

    State per device: ``last`` (k floats), ``ring`` (capacity uint32),
    ``pos``, ``hits``, ``misses``, ``start``, ``alarm``, ``chance`` (float32):
    about 4·capacity + 8·k + 44 bytes.

    >>> det = ReplayDetector(k=3, capacity=8, min_matches=2)
    >>> det.resize(1)
    >>> seq = [1.5, 2.25, 0.5, 3.0, 1.0, 1.5, 2.25, 0.5, 3.0]
    >>> [bool(det.update(Observation(np.array([0]), np.array([w]), np.array([v]), np.zeros(1),
    ...       np.zeros(1), np.ones(1))).alarm[0]) for w, v in enumerate(seq)]
    [False, False, False, False, False, False, False, False, True]
    """

    name = "replay"

    def __init__(self, k: int = 2, capacity: int = 128, min_matches: int = 3, max_chance: float = 0.05) -> None:
        if not (k >= 2 and capacity >= 1 and min_matches >= 1 and 0 <= max_chance <= 1):
            raise ValueError("ReplayDetector needs k >= 2, capacity >= 1, min_matches >= 1, 0 <= max_chance <= 1")
        self.k, self.capacity, self.min_matches, self.max_chance = k, capacity, min_matches, max_chance
        super().__init__()

    _state = {"last": ("float64", np.nan), "filled": ("int64", 0), "ring": ("uint32", 0),
              "pos": ("int64", 0), "hits": ("int64", 0), "misses": ("int64", 0),
              "start": ("float64", 0.0), "alarm": ("bool", False), "chance": ("float32", 0.0)}

    def _spec(self, key: str) -> tuple[str, float, tuple[int, ...]]:
        dtype, init, _ = super()._spec(key)
        shape = {"last": (self.k,), "ring": (self.capacity,)}.get(key, ())
        return dtype, init, shape

    def update(self, obs: Observation) -> Detection:
        d = obs.devices
        old = take_rows(self._last, d)
        last = np.empty_like(old)
        last[:, :-1], last[:, -1] = old[:, 1:], obs.value
        put_rows(self._last, d, last)
        filled = np.minimum(self._filled[d] + 1, max(self.k, self.capacity))
        self._filled[d] = filled
        ready = (filled >= self.k) & (_span(last) > 0)
        h = _hash(last) | np.uint32(1)  # 0 marks an empty ring slot
        seen = ready & self._in_ring(d, h)
        pos = self._pos[d]
        np.put(self._ring, d[ready] * self.capacity + pos[ready], h[ready])  # flat index of (device, slot)
        self._pos[d] = np.where(ready, (pos + 1) % self.capacity, pos)
        before = self._hits[d]
        hits = np.where(seen, before + 1, 0)
        misses = np.where(seen, 0, self._misses[d] + 1)
        start = np.where(seen & (before == 0), obs.window - self.k + 1, self._start[d])
        self._start[d] = start
        self._hits[d], self._misses[d] = hits, misses
        was = self._alarm[d]
        chance = self._chance[d]
        # matches outside an alarm, before a run is long enough to be one, are chance (or a replay's first
        # windows, a few of them among CHANCE_MEMORY): their share
        a = np.float32(1.0 / CHANCE_MEMORY)
        self._chance[d] = np.where(was, chance, chance + a * (seen.astype(np.float32) - chance))
        able = (filled >= self.capacity) & (chance <= self.max_chance)
        alarm = np.where(was, misses < self.min_matches, able & (hits >= self.min_matches))
        self._alarm[d] = alarm
        return Detection(alarm=alarm, score=hits.astype(np.float64), onset=start)

    def source(self, device: int, peers: np.ndarray, recent: int = 16) -> tuple[int, int]:
        """(source, fingerprints shared) for the device whose fingerprints hold most of this
        device's last ``recent`` ones (its own older ones, or a peer's), if that is at least
        ``min_matches`` more than four times what chance would share (from the two devices'
        ``chance``); else (-1, 0). The source is ``device`` itself for a replay of its own past.

        A device re-sending another's readings, live or delayed by less than ``capacity``
        windows, repeats that device's sequences rather than its own. Continuous readings share
        no exact sequence by chance; a device (or peer) repeating itself by chance more than
        ``max_chance`` of its windows is never called a copy (or its source), nor is either
        before ``capacity`` windows. A ragged stream breaks many pairs (readings falling into
        other windows than the source's), so a few shared ones are enough; but the source must
        share at least three times as many as any other candidate (peers measuring one
        coarsely quantised signal share pairs with each other by chance, whatever each one's
        own repeats).
        """
        peers = peers[(peers != device) & (self._chance[peers] <= self.max_chance)
                      & (self._filled[peers] >= self.capacity)]
        recent = min(recent, self.capacity // 2)
        if self._filled[device] < self.capacity or self._chance[device] > self.max_chance:
            return -1, 0
        slots = (self._pos[device] - 1 - np.arange(self.capacity)) % self.capacity
        ring = self._ring[device, slots]
        mine = ring[:recent][ring[:recent] != 0]
        if len(mine) < self.min_matches:
            return -1, 0
        # the device's own older fingerprints first (a replay of its own past, seen as it shifts)
        shared = np.r_[np.isin(mine, ring[recent:]).sum(),
                       (take_rows(self._ring, peers)[:, :, None] == mine).any(axis=1).sum(axis=1)]
        # pairs shared by chance: about len(mine) times the devices' chance shares (its own, and the
        # peer's); four times that on top of min_matches
        chance = len(mine) * (self._chance[device] + np.r_[0.0, self._chance[peers]])
        peers = np.r_[device, peers]
        excess = shared - 4 * chance
        best = int(np.argmax(excess))
        # ... and a copy has one source: where several peers share as much (stations reading one
        # regional pressure in whole hectopascals), the pairs are the signal's, not a copy's
        runner_up = np.max(np.delete(shared, best), initial=0)
        if excess[best] < self.min_matches or shared[best] < 3 * runner_up:
            return -1, 0
        return int(peers[best]), int(shared[best])

    def _in_ring(self, d: np.ndarray, h: np.ndarray, block: int = 4096) -> np.ndarray:
        """Whether each device's ring holds its fingerprint ``h``, a block of devices at a time
        (each block's rings stay in cache between the copy and the comparison). A row's matches are
        reduced 8 at a time, as uint64 words (numpy's ``any`` along short bool rows is slow)."""
        out = np.empty(len(d), bool)
        for i in range(0, len(d), block):
            match = take_rows(self._ring, d[i:i + block]) == h[i:i + block, None]
            out[i:i + block] = _words(match).any(axis=1)
        return out
