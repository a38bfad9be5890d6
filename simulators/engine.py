"""The fleet simulator: a `Scenario` + seed in, readings and ground truth out.

The whole run is generated at construction as ``(devices, samples)`` arrays
(fast: one numpy pass per component).  Every component draws from its own
named random stream, so adding attacks never changes the honest world:
a scenario with and without attacks yields identical honest readings.

>>> from simulators.scenario import AttackSpec, Scenario
>>> sim = FleetSimulator(Scenario(groups=2, devices_per_group=3, samples=5,
...                               attacks=[AttackSpec(type="bias", devices=["site-01-dev-002"], start=2)]))
>>> tick = next(sim.ticks()); tick.index, tick.device.tolist(), tick.seq.tolist()
(0, [0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0])
>>> sorted(next(sim.readings()))
['device_id', 'group', 'quantity', 'seq', 'ts', 'unit', 'value']
>>> [(r["device_id"], r["status"], r["type"], r["start_ts"]) for r in sim.labels()][-1]
('site-01-dev-002', 'attack', 'bias', 1767225720.0)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators import world
from simulators.attacks import Placement, place_attacks
from simulators.scenario import Scenario


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent, stable random stream ``name`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),)))


@dataclass(frozen=True, slots=True)
class Tick:
    """All readings of one sample index; arrays are aligned, one entry per device."""

    index: int
    device: np.ndarray   # global device index (into `FleetSimulator.device_ids`)
    ts: np.ndarray       # event time, s since epoch
    value: np.ndarray
    seq: np.ndarray      # per-device sequence number


class FleetSimulator:
    """Simulate ``scenario`` with ``seed`` (default: ``scenario.seed``)."""

    def __init__(self, scenario: Scenario, seed: int | None = None):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        s, n, dpg = scenario, scenario.n_devices, scenario.devices_per_group
        self._device_ids = [s.device_id(g, d) for g in range(s.groups) for d in range(dpg)]
        self._groups = [s.group_name(g) for g in range(s.groups)]
        self._device_group = np.repeat(np.arange(s.groups), dpg)

        self._times = world.sample_times(s)
        self._true = world.true_signal(s, self._times, stream(self.seed, "world"))
        self._offset, self._sigma = world.calibrate(s.signal, n, stream(self.seed, "devices"))
        noise = stream(self.seed, "noise").standard_normal((n, s.samples))
        honest = self._true[self._device_group] + self._offset[:, None] + self._sigma[:, None] * noise
        self._ts = np.broadcast_to(self._times, (n, s.samples))
        if s.ts_jitter_seconds > 0:
            self._ts = self._ts + stream(self.seed, "jitter").uniform(0, s.ts_jitter_seconds, (n, s.samples))

        self._placements = place_attacks(s, stream(self.seed, "targets"))
        self._values = honest
        for p in self._placements:
            p.apply(self._values, self._sigma, stream(self.seed, f"attack-{p.spec_index}"))
        for arr in (self._values, self._ts, self._true):
            arr.flags.writeable = False

    # --- layout -----------------------------------------------------------
    @property
    def device_ids(self) -> list[str]:
        return list(self._device_ids)

    @property
    def groups(self) -> list[str]:
        return list(self._groups)

    @property
    def device_group(self) -> np.ndarray:
        """Group index of every device, shape ``(devices,)``."""
        return self._device_group.copy()

    # --- generated state (read-only) ---------------------------------------
    @property
    def true_signal(self) -> np.ndarray:
        """True quantity per group and sample, shape ``(groups, samples)``."""
        return self._true

    @property
    def times(self) -> np.ndarray:
        """Scheduled event time per sample index, shape ``(samples,)``."""
        return self._times.copy()

    @property
    def ts(self) -> np.ndarray:
        """Emitted event time per device and sample, shape ``(devices, samples)``."""
        return self._ts

    @property
    def values(self) -> np.ndarray:
        """Emitted value per device and sample, shape ``(devices, samples)``."""
        return self._values

    @property
    def offsets(self) -> np.ndarray:
        """Calibration offset per device."""
        return self._offset.copy()

    @property
    def sigmas(self) -> np.ndarray:
        """Noise σ per device."""
        return self._sigma.copy()

    @property
    def placements(self) -> list[Placement]:
        """Attacks resolved onto devices and sample indices, in spec order."""
        return list(self._placements)

    # --- output -----------------------------------------------------------
    def ticks(self) -> Iterator[Tick]:
        """One `Tick` per sample index, in event-time order."""
        device = np.arange(len(self._device_ids))
        for i in range(self.scenario.samples):
            yield Tick(i, device, self._ts[:, i], self._values[:, i], np.full(device.size, i))

    def readings(self) -> Iterator[dict[str, Any]]:
        """Reading dicts in the product's wire contract, tick by tick."""
        ids, groups = self._device_ids, self._groups
        group_of = [groups[g] for g in self._device_group]
        extra = {k: v for k, v in (("quantity", self.scenario.quantity), ("unit", self.scenario.unit))
                 if v is not None}
        for tick in self.ticks():
            for d, ts, value, seq in zip(tick.device.tolist(), tick.ts.tolist(),
                                         tick.value.tolist(), tick.seq.tolist()):
                yield {"device_id": ids[d], "group": group_of[d], "ts": ts, "value": value,
                       "seq": seq, **extra}

    def labels(self) -> list[dict[str, Any]]:
        """Ground truth: one record per (device, attack), one honest record per clean device.

        ``start_ts``/``end_ts`` are the event times of the first/last affected
        reading (``end_ts`` None when it lasts to the end of the run).
        """
        by_device: dict[int, list[dict[str, Any]]] = {}
        for p in self._placements:
            for row in p.rows.tolist():
                sigma = float(self._sigma[p.rows].mean() if p.kind.shared else self._sigma[row])
                by_device.setdefault(row, []).append({
                    "device_id": self._device_ids[row], "group": self._groups[p.group],
                    "status": p.status, "type": p.kind.name,
                    "start_ts": float(self._ts[row, p.start]),
                    "end_ts": None if p.open_ended else float(self._ts[row, p.stop - 1]),
                    "collusion_set": p.set_id,
                    "params": {**p.params, "sigma": sigma},
                })
        out = []
        for row, dev in enumerate(self._device_ids):
            out.extend(by_device.get(row) or [{
                "device_id": dev, "group": self._groups[self._device_group[row]],
                "status": "honest", "type": None,
                "start_ts": float(self._ts[row, 0]), "end_ts": None,
                "collusion_set": None, "params": {},
            }])
        return out
