"""The fleet simulator: a `Scenario` + seed in, readings and ground truth out.

The whole run is generated at construction as ``(devices, samples)`` arrays
(fast: one numpy pass per component).  Every component draws from its own
named random stream, so adding attacks never changes the honest world:
a scenario with and without attacks yields identical honest readings
(`FleetSimulator.clean_twin`).  Order of construction: true signal, honest
devices (+ sybil devices), effects in spec order, sybil presence, delivery
(dropouts and outages become NaN in ``values``), emission order.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulators import world
from simulators.attacks import Placement, place_attacks
from simulators.scenario import STATUSES, Scenario


def stream(seed: int, name: str) -> np.random.Generator:
    """Independent, stable random stream ``name`` of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),)))


@dataclass(frozen=True, slots=True)
class Tick:
    """All readings sent during one sample tick, in the order sent; arrays are aligned.

    Without delivery imperfections that is every device's reading of sample
    ``index``; otherwise dropped readings are missing and late or duplicated
    ones (of earlier samples) follow the on-time ones.
    """

    index: int
    device: np.ndarray   # global device index (into `FleetSimulator.device_ids`)
    ts: np.ndarray       # event time, s since epoch
    value: np.ndarray
    seq: np.ndarray      # per-device sequence number
    sample: np.ndarray | None = None   # sample index of each reading (None: all ``index``)


class FleetSimulator:
    """Simulate ``scenario`` with ``seed`` (default: ``scenario.seed``).

    ``exclude``: statuses (``attack``, ``fault``, ``benign_event``) whose specs
    are placed (so the others land where they would) but not applied; see
    `clean_twin`.
    """

    def __init__(self, scenario: Scenario, seed: int | None = None, *, exclude: Iterable[str] = ()):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.exclude = frozenset(exclude)
        if not self.exclude <= set(STATUSES):
            raise ValueError(f"exclude: unknown statuses {sorted(self.exclude - set(STATUSES))}")
        s, n, dpg, T = scenario, scenario.n_devices, scenario.devices_per_group, scenario.samples
        seed_ = self.seed

        def streams(name: str) -> np.random.Generator:
            return stream(seed_, name)

        placements = place_attacks(s, streams("targets"), streams)
        self._placements = [p for p in placements if p.status not in self.exclude]
        sybils = [p for p in placements if p.kind.creates_devices]     # excluded ones keep empty rows
        self._absent = [p.rows for p in sybils if p.status in self.exclude]

        self._device_ids = [s.device_id(g, d) for g in range(s.groups) for d in range(dpg)]
        self._groups = [s.group_name(g) for g in range(s.groups)]
        group_of = [np.repeat(np.arange(s.groups), dpg)]
        next_id = [dpg] * s.groups
        for p in sybils:                                  # new ids continue each group's numbering
            for _ in p.rows:
                self._device_ids.append(s.device_id(p.group, next_id[p.group]))
                next_id[p.group] += 1
            group_of.append(np.full(p.rows.size, p.group))
        self._device_group = np.concatenate(group_of)
        self._n_regular = n

        self._times = world.sample_times(s)
        self._true = world.true_signal(s, self._times, streams("world"), streams)
        self._offset, self._sigma = world.calibrate(s.signal, n, streams("devices"))
        noise = streams("noise").standard_normal((n, T))
        honest = self._true[self._device_group[:n]] + self._offset[:, None] + self._sigma[:, None] * noise
        self._drift = np.zeros(n)
        if s.signal.drift_sigma > 0:
            self._drift = world.drift_rates(s.signal, n, streams("drift"))
            honest = honest + self._drift[:, None] * ((self._times - self._times[0]) / world.DAY_SECONDS)
        self._ts = np.broadcast_to(self._times, (n, T))
        if s.ts_jitter_seconds > 0:
            self._ts = self._ts + streams("jitter").uniform(0, s.ts_jitter_seconds, (n, T))
        plans = [world.delivery(s.delivery, n, T, s.interval_seconds, streams)] if s.delivery.active else []

        blocks_v, blocks_ts = [honest], [self._ts]
        offsets, sigmas, drifts = [self._offset], [self._sigma], [self._drift]
        for p in sybils:                                  # honest-looking physics of their own
            rng = stream(seed_, f"sybil-{p.spec_index}")
            off, sig = world.calibrate(s.signal, p.rows.size, rng)
            v = self._true[p.group] + off[:, None] + sig[:, None] * rng.standard_normal((p.rows.size, T))
            ts = np.broadcast_to(self._times, v.shape)
            if s.ts_jitter_seconds > 0:
                ts = ts + rng.uniform(0, s.ts_jitter_seconds, v.shape)
            blocks_v.append(v)
            blocks_ts.append(ts)
            offsets.append(off)
            sigmas.append(sig)
            drifts.append(np.zeros(p.rows.size))
            if s.delivery.active:
                plans.append(world.delivery(s.delivery, p.rows.size, T, s.interval_seconds,
                                            lambda name, i=p.spec_index: stream(seed_, f"sybil-{i}/{name}")))
        if sybils:
            honest = np.concatenate(blocks_v)
            self._ts = np.concatenate(blocks_ts)
            self._offset, self._sigma, self._drift = map(np.concatenate, (offsets, sigmas, drifts))
        if plans:
            skew = np.concatenate([d.skew for d in plans])
            if np.any(skew != 0):
                self._ts = self._ts + skew[:, None]

        self._values = honest
        self._seq = np.broadcast_to(np.arange(T), self._values.shape)
        for p in self._placements:
            group_rows = p.group * dpg + np.arange(dpg)
            p.apply(self._values, self._sigma, stream(seed_, f"attack-{p.spec_index}"), self._times, group_rows)
            if p.kind.name == "restart":
                resume = min(p.start + int(p.params["gap"]), T)
                self._seq = self._seq.copy()
                self._seq[np.ix_(p.rows, np.arange(resume, T))] = np.arange(T - resume)
            if p.kind.creates_devices:
                self._values[p.rows, :p.start] = np.nan
                self._values[p.rows, p.stop:] = np.nan
        for rows in self._absent:                         # sybils left out: the ids exist, never send
            self._values[rows] = np.nan

        self._late = self._dup = None
        if plans:
            sent = np.concatenate([d.sent for d in plans])
            self._values[~sent] = np.nan
            self._late = np.concatenate([d.late for d in plans])
            self._dup = np.concatenate([d.duplicate for d in plans])
        self._emission = self._emission_order()
        for arr in (self._values, self._ts, self._true, self._seq):
            if arr.flags.writeable:
                arr.flags.writeable = False

    def _emission_order(self) -> tuple[np.ndarray, ...] | None:
        """(tick, row, sample) of every message in sending order; None when every reading is
        sent on time exactly once (then tick = sample for all devices).  Within a tick the
        on-time readings come first (device order), then late ones and duplicates; readings
        due after the last tick are sent at the last tick."""
        T = self.scenario.samples
        present = ~np.isnan(self._values)
        if self._late is None and present.all():
            return None
        rows, cols = np.nonzero(present)
        late = np.zeros(rows.size, dtype=np.int64) if self._late is None else self._late[rows, cols]
        tick = np.minimum(cols + late, T - 1)
        parts = [(tick, rows, cols, (tick != cols).astype(np.int64), np.zeros_like(tick))]
        if self._dup is not None:
            dup = self._dup[rows, cols]
            has = dup >= 0
            dtick = np.minimum(tick[has] + dup[has], T - 1)
            parts.append((dtick, rows[has], cols[has], np.ones_like(dtick), np.ones_like(dtick)))
        tick, rows, cols, delayed, copy = (np.concatenate(x) for x in zip(*parts))
        n = self._values.shape[0]
        key = (((tick * 2 + delayed) * T + cols) * n + rows) * 2 + copy   # on-time first within a tick
        order = np.argsort(key, kind="stable")
        return tick[order], rows[order], cols[order]

    # --- twins --------------------------------------------------------------
    def twin(self, *statuses: str) -> FleetSimulator:
        """The same run with the specs of ``statuses`` (and those already excluded) left out."""
        return FleetSimulator(self.scenario, self.seed, exclude=self.exclude | set(statuses))

    def clean_twin(self) -> FleetSimulator:
        """The same world without the attacks (faults and benign events kept): identical honest
        readings, the same rows (a sybil's row is all NaN: it never sends and has no label)."""
        return self.twin("attack")

    # --- layout -----------------------------------------------------------
    @property
    def device_ids(self) -> list[str]:
        """Every device row, the fleet's then sybils' (appended in spec order, also when excluded)."""
        return list(self._device_ids)

    @property
    def groups(self) -> list[str]:
        return list(self._groups)

    @property
    def device_group(self) -> np.ndarray:
        """Group index of every device, shape ``(devices,)``."""
        return self._device_group.copy()

    @property
    def n_regular(self) -> int:
        """Number of the fleet's own devices (rows before the sybils)."""
        return self._n_regular

    # --- generated state (read-only) ---------------------------------------
    @property
    def true_signal(self) -> np.ndarray:
        """True quantity per group and sample, shape ``(groups, samples)``."""
        return self._true

    truth = true_signal

    @property
    def times(self) -> np.ndarray:
        """Scheduled event time per sample index, shape ``(samples,)``."""
        return self._times.copy()

    @property
    def ts(self) -> np.ndarray:
        """Emitted event time per device and sample (jitter and clock skew included), ``(devices, samples)``."""
        return self._ts

    @property
    def values(self) -> np.ndarray:
        """Emitted value per device and sample, ``(devices, samples)``; NaN: nothing sent."""
        return self._values

    @property
    def seq(self) -> np.ndarray:
        """Sequence number per device and sample (restarts at 0 after a ``restart``)."""
        return self._seq

    @property
    def offsets(self) -> np.ndarray:
        """Calibration offset per device (at the first sample)."""
        return self._offset.copy()

    @property
    def drift_rates(self) -> np.ndarray:
        """Natural calibration drift per device, quantity units per day (honest)."""
        return self._drift.copy()

    @property
    def sigmas(self) -> np.ndarray:
        """Noise σ per device."""
        return self._sigma.copy()

    @property
    def placements(self) -> list[Placement]:
        """Attacks resolved onto devices and sample indices, in spec order."""
        return list(self._placements)

    @property
    def emission(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(tick, device row, sample index) of every message, in sending order."""
        if self._emission is None:
            n, T = self._values.shape
            return np.repeat(np.arange(T), n), np.tile(np.arange(n), T), np.repeat(np.arange(T), n)
        return tuple(a.copy() for a in self._emission)

    # --- output -----------------------------------------------------------
    def ticks(self) -> Iterator[Tick]:
        """One `Tick` per sample tick, in event-time order of the ticks."""
        if self._emission is None:
            device = np.arange(len(self._device_ids))
            for i in range(self.scenario.samples):
                yield Tick(i, device, self._ts[:, i], self._values[:, i], np.full(device.size, i))
            return
        tick, rows, cols = self._emission
        bounds = np.searchsorted(tick, np.arange(self.scenario.samples + 1))
        for i in range(self.scenario.samples):
            a, b = bounds[i], bounds[i + 1]
            r, c = rows[a:b], cols[a:b]
            yield Tick(i, r, self._ts[r, c], self._values[r, c], self._seq[r, c], c)

    def readings(self) -> Iterator[dict[str, Any]]:
        """Reading dicts in the product's wire contract, in sending order."""
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
        """Ground truth: one record per (device, labelled interval); one honest record per device
        with none (rows of excluded sybils, which never send, have none).

        ``start_ts``/``end_ts`` are the event times of the first/last sample of
        the interval (``end_ts`` None when it lasts to the end of the run),
        whether or not that sample was delivered.  Gated kinds (``intermittent``,
        ``poison``) get one record per on-interval.  Colluding sets and sybils
        carry their set id in ``collusion_set``; benign events carry
        ``params["event_id"]`` (``collusion_set`` None).  ``params`` holds the
        kind's parameters and ``sigma`` (the set's mean σ for shared kinds).
        """
        by_device: dict[int, list[dict[str, Any]]] = {}
        T = self.scenario.samples
        for p in self._placements:
            runs = p.runs(self._times)
            for row in p.rows.tolist():
                sigma = float(self._sigma[p.rows].mean() if p.kind.shared else self._sigma[row])
                params = dict(p.params)
                if p.source is not None:
                    params["source"] = self._device_ids[p.source]
                if p.kind.name == "camouflage":
                    params["role"] = "camouflage" if row == p.lead else "shift"
                if p.status == "benign_event":
                    params["event_id"] = p.set_id
                params["sigma"] = sigma
                for a, b in runs:
                    by_device.setdefault(row, []).append({
                        "device_id": self._device_ids[row], "group": self._groups[p.group],
                        "status": p.status, "type": p.kind.name,
                        "start_ts": float(self._ts[row, a]),
                        "end_ts": None if (p.open_ended and b == T) else float(self._ts[row, b - 1]),
                        "collusion_set": None if p.status == "benign_event" else p.set_id,
                        "params": dict(params),
                    })
        absent = set(np.concatenate(self._absent).tolist()) if self._absent else set()
        out = []
        for row, dev in enumerate(self._device_ids):
            if row in absent:
                continue
            out.extend(by_device.get(row) or [{
                "device_id": dev, "group": self._groups[self._device_group[row]],
                "status": "honest", "type": None,
                "start_ts": float(self._ts[row, 0]), "end_ts": None,
                "collusion_set": None, "params": {},
            }])
        return out
