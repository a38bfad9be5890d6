"""The contract every per-device detector follows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np


def take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` for a 2-D array (``np.take`` copies whole rows; fancy indexing goes element by element)."""
    return np.take(a, idx, axis=0)


def put_rows(a: np.ndarray, idx: np.ndarray, rows: np.ndarray) -> None:
    """``a[idx] = rows`` for a C-contiguous 2-D array, each row moved as one opaque item
    (numpy's fancy assignment of short rows goes element by element and is several times slower)."""
    item = np.dtype((np.void, a.shape[1] * a.itemsize))
    np.put(a.view(item)[:, 0], idx, np.ascontiguousarray(rows, dtype=a.dtype).view(item)[:, 0])


def where_zero(cond: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.where(cond, x, 0.0)`` for float64 ``x``, bit for bit, without a branch per element:
    ``x``'s bits and-ed with all ones where ``cond``, all zeros elsewhere (np.where mispredicts
    on a mask that is neither mostly true nor mostly false, and is then several times slower)."""
    return (np.asarray(x, np.float64).view(np.int64) & -cond.astype(np.int64)).view(np.float64)


@dataclass(frozen=True)
class Observation:
    """One closed window for a set of devices (all arrays aligned, one entry a device).

    ``z`` is the device's standardised residual against the consensus and its own
    learned offset: N(0, 1) for an honest device. ``slack`` (optional, sigmas per
    device) is how far that learned offset may itself be off: mean-shift
    statistics add it to their reference value, so a baseline learned from few
    windows is not mistaken for a shift.
    """

    devices: np.ndarray    # global device indices (unique)
    window: np.ndarray     # event-time window index
    value: np.ndarray      # raw reading
    consensus: np.ndarray  # group consensus of the window
    z: np.ndarray          # standardised residual
    scale: np.ndarray      # the device's residual scale (value units)
    slack: np.ndarray | None = None  # uncertainty of the learned offset (sigmas); None: none


@dataclass(frozen=True)
class Detection:
    """What a detector says about the devices of an `Observation`."""

    alarm: np.ndarray  # bool: in alarm after this window (with the detector's hysteresis)
    score: np.ndarray  # float: the detector's statistic
    onset: np.ndarray  # float: estimated window index where the deviation began


class Detector:
    """Base class: per-device state arrays named in ``_state``; grows on demand.

    Subclasses set ``name`` (the alert type they raise), list their state
    arrays with their dtypes and initial values in ``_state``, and implement
    ``update``.
    """

    name: ClassVar[str] = ""
    _state: ClassVar[dict[str, tuple]] = {}

    def __init__(self) -> None:
        self._n = 0
        for key in self._state:
            dtype, init, shape = self._spec(key)
            setattr(self, f"_{key}", np.full((0,) + shape, init, dtype=dtype))

    def _spec(self, key: str) -> tuple[str, float, tuple[int, ...]]:
        """(dtype, initial value, per-device shape) of a state array."""
        dtype, init = self._state[key][:2]
        return dtype, init, ()

    def resize(self, n_devices: int) -> None:
        """Make room for device indices up to ``n_devices - 1``."""
        if n_devices <= self._n:
            return
        size = max(n_devices, 2 * self._n)
        for key in self._state:
            dtype, init, shape = self._spec(key)
            old = getattr(self, f"_{key}")
            new = np.full((size,) + shape, init, dtype=dtype)
            new[: len(old)] = old
            setattr(self, f"_{key}", new)
        self._n = size

    def update(self, obs: Observation) -> Detection:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self, devices: np.ndarray) -> None:
        """Forget what was learned about these devices."""
        for key in self._state:
            getattr(self, f"_{key}")[devices] = self._spec(key)[1]

    def state_dict(self) -> dict[str, list]:
        return {key: getattr(self, f"_{key}").tolist() for key in self._state}

    def load_state_dict(self, state: dict[str, list]) -> None:
        for key in self._state:
            dtype, _, shape = self._spec(key)
            arr = np.asarray(state[key], dtype=dtype)
            setattr(self, f"_{key}", arr.reshape((len(arr),) + shape))
        self._n = len(getattr(self, f"_{next(iter(self._state))}")) if self._state else 0

    def state_bytes_per_device(self) -> int:
        """Bytes of state this detector keeps per device."""
        return sum(int(np.dtype(self._spec(k)[0]).itemsize * np.prod(self._spec(k)[2], dtype=int))
                   for k in self._state)
