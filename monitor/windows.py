"""Align readings per group into event-time windows, closed by a per-group watermark.

A window ``w`` of a group covers event times ``[w*W, (w+1)*W)``. The group's
watermark is the largest event time it has seen minus the allowed lateness; a
window closes once its end is at or below the watermark. A reading whose window
is already closed *at the moment it arrives* is late and dropped (counted). The
rule only depends on the order of readings within a group, never on how they
were cut into micro-batches, so a file replay and a Kafka run agree.

Everything is vectorised over the batch; state is a few arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowRound:
    """Closed windows, at most one per group, as a (rows x devices-in-group) matrix.

    ``values[r, j]`` is the reading of the ``j``-th device of group ``groups[r]``
    in window ``windows[r]`` (NaN if it sent none); ``devices[r, j]`` its global
    device index (-1 where absent).
    """

    groups: np.ndarray
    windows: np.ndarray
    values: np.ndarray
    devices: np.ndarray


def _segmented_running_max(keys: np.ndarray, x: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Running max of ``x`` within runs of equal (sorted) ``keys``, seeded by ``start`` at each run head."""
    if len(x) == 0:
        return x.copy()
    head = np.r_[True, keys[1:] != keys[:-1]]
    seg = np.cumsum(head) - 1
    lo = min(float(np.min(x)), float(np.min(start)))
    hi = max(float(np.max(x)), float(np.max(start)))
    span = hi - lo + 1.0
    y = (x - lo) + seg * span
    y[head] = np.maximum(y[head], start[head] - lo + seg[head] * span)
    return np.maximum.accumulate(y) - seg * span + lo


#: the fields of a pending reading and their dtypes
_FIELDS = {"g": np.int64, "w": np.int64, "dev": np.int64, "local": np.int64, "val": np.float64, "order": np.int64}


def _arrival_sort(g: np.ndarray, w: np.ndarray, dev: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Indices sorting by (group, window, device, arrival): ``np.lexsort`` of the four, done as one
    stable sort of a combined integer key when it fits (four times fewer passes over the batch).

    >>> g, w, d, o = np.array([1, 0, 1, 0]), np.array([5, 7, 5, 6]), np.array([2, 0, 2, 1]), np.arange(4)
    >>> _arrival_sort(g, w, d, o).tolist() == np.lexsort((o, d, w, g)).tolist()
    True
    """
    if len(g) == 0:
        return np.zeros(0, dtype=np.int64)
    wr = w - w.min()
    n_w, n_d = int(wr.max()) + 1, int(dev.max()) + 1
    if dev.min() < 0 or g.min() < 0 or (int(g.max()) + 1) * n_w * n_d >= 2 ** 62 or np.any(np.diff(order) < 0):
        return np.lexsort((order, dev, w, g))
    return np.argsort((g * n_w + wr) * n_d + dev, kind="stable")  # ties keep arrival order


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Chunks of readings (dicts of aligned arrays) as one, in order (the chunk itself if only one)."""
    if len(chunks) == 1:
        return chunks[0]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


class WindowAligner:
    """Groups readings into closed windows per group.

    Parameters
    ----------
    window_seconds
        Window length W in event-time seconds.
    lateness_seconds
        How long after a window's end readings for it are still accepted.

    >>> al = WindowAligner(window_seconds=10, lateness_seconds=0)
    >>> al.add(np.array([0, 0, 0]), np.array([0, 1, 0]), np.array([1.0, 2.0, 12.0]),
    ...        np.array([5.0, 6.0, 7.0]), np.array([0, 1, 0]))
    0
    >>> [r.values.tolist() for r in al.close()]
    [[[5.0, 6.0]]]
    """

    def __init__(self, window_seconds: float, lateness_seconds: float = 0.0) -> None:
        if window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if lateness_seconds < 0:
            raise ValueError("lateness_seconds must be >= 0")
        self.window_seconds = float(window_seconds)
        self.lateness_seconds = float(lateness_seconds)
        self._max_ts = np.full(0, -np.inf)
        # readings waiting in open windows, as the chunks they came in (in arrival order): a chunk is
        # copied only when part of it closes (or to merge what stays open), not every time a batch arrives
        self._pending: list[dict[str, np.ndarray]] = []
        self._arrivals = 0

    @staticmethod
    def _empty() -> dict[str, np.ndarray]:
        return {k: np.empty(0, t) for k, t in _FIELDS.items()}

    def _grow(self, n_groups: int) -> None:
        if n_groups > len(self._max_ts):
            self._max_ts = np.r_[self._max_ts, np.full(n_groups - len(self._max_ts), -np.inf)]

    def add(self, groups: np.ndarray, devices: np.ndarray, ts: np.ndarray,
            values: np.ndarray, local: np.ndarray) -> int:
        """Accept a batch (in arrival order); returns how many readings were late."""
        n = len(ts)
        if n == 0:
            return 0
        self._grow(int(groups.max()) + 1)
        order = np.argsort(groups, kind="stable")
        gs = groups[order]
        prior = self._max_ts[gs]
        prior = np.where(np.isfinite(prior), prior, ts[order])
        run_max = np.empty(n)
        run_max[order] = _segmented_running_max(gs, ts[order], prior)
        win = np.floor(ts / self.window_seconds).astype(np.int64)
        late = (win + 1) * self.window_seconds <= run_max - self.lateness_seconds
        np.maximum.at(self._max_ts, groups, ts)
        ok = ~late
        arrivals = self._arrivals + np.arange(n, dtype=np.int64)
        self._arrivals += n
        new = {"g": groups[ok], "w": win[ok], "dev": devices[ok], "local": local[ok],
               "val": values[ok], "order": arrivals[ok]}
        self._pending.append({k: np.asarray(v, _FIELDS[k]) for k, v in new.items()})
        return int(late.sum())

    def close(self, flush: bool = False) -> list[WindowRound]:
        """Windows that the watermark has passed (all of them if ``flush``), in rounds.

        Round ``r`` holds the ``r``-th closed window of every group, so that
        per-device state sees windows in event-time order.
        """
        closed, kept = [], []
        for p in self._pending:
            if flush:
                done = np.ones(len(p["g"]), dtype=bool)
            else:
                done = (p["w"] + 1) * self.window_seconds <= self._max_ts[p["g"]] - self.lateness_seconds
            if done.all():
                closed.append(p)
            elif not done.any():
                kept.append(p)
            else:
                closed.append({k: v[done] for k, v in p.items()})
                kept.append({k: v[~done] for k, v in p.items()})
        kept = [p for p in kept if len(p["g"])]
        self._pending = [_concat(kept)] if len(kept) > 1 else kept  # (few chunks, however small the batches)
        closed = [p for p in closed if len(p["g"])]
        if not closed:
            return []
        c = _concat(closed)
        # last arrival wins for a device sending twice in one window
        srt = _arrival_sort(c["g"], c["w"], c["dev"], c["order"])
        c = {k: v[srt] for k, v in c.items()}
        last = np.r_[(c["g"][1:] != c["g"][:-1]) | (c["w"][1:] != c["w"][:-1])
                     | (c["dev"][1:] != c["dev"][:-1]), True]
        c = {k: v[last] for k, v in c.items()}
        # window rank within its group -> round number
        new_win = np.r_[True, (c["g"][1:] != c["g"][:-1]) | (c["w"][1:] != c["w"][:-1])]
        new_grp = np.r_[True, c["g"][1:] != c["g"][:-1]]
        win_id = np.cumsum(new_win) - 1
        first_win_of_group = np.maximum.accumulate(np.where(new_grp, win_id, 0))
        rank = win_id - first_win_of_group
        rounds = []
        for r in range(int(rank.max()) + 1):
            sel = rank == r
            wid = win_id[sel]
            uniq, row = np.unique(wid, return_inverse=True)
            rows = len(uniq)
            cols = int(c["local"][sel].max()) + 1
            values = np.full((rows, cols), np.nan)
            devices = np.full((rows, cols), -1, dtype=np.int64)
            values[row, c["local"][sel]] = c["val"][sel]
            devices[row, c["local"][sel]] = c["dev"][sel]
            first = np.r_[True, wid[1:] != wid[:-1]]
            rounds.append(WindowRound(groups=c["g"][sel][first], windows=c["w"][sel][first],
                                      values=values, devices=devices))
        return rounds

    @property
    def pending(self) -> int:
        """Readings waiting in windows that are still open."""
        return sum(len(p["g"]) for p in self._pending)

    def state_dict(self) -> dict:
        pending = _concat([self._empty()] + self._pending)
        return {"max_ts": self._max_ts.tolist(), "arrivals": self._arrivals,
                **{f"pending_{k}": v.tolist() for k, v in pending.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._max_ts = np.asarray(state["max_ts"], dtype=np.float64)
        self._arrivals = int(state["arrivals"])
        pending = {k: np.asarray(state[f"pending_{k}"], dtype=v.dtype) for k, v in self._empty().items()}
        self._pending = [pending] if len(pending["g"]) else []
