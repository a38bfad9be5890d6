"""Feeding simulated readings into a transport at a chosen pace (the simulator's edge)."""

from __future__ import annotations

import json
import time
from typing import Callable

from simulators import FleetSimulator


def encode_tick(sim: FleetSimulator, tick, gateway_batches: bool) -> list[tuple[bytes, bytes]]:
    """(key, value) messages for one tick: one reading a message, or one JSON array per group."""
    s = sim.scenario
    out: list[tuple[bytes, bytes]] = []
    per_group: dict[str, list[dict]] = {}
    for d, ts, v, seq in zip(tick.device.tolist(), tick.ts.tolist(), tick.value.tolist(), tick.seq.tolist()):
        group = sim.groups[int(sim.device_group[d])]
        reading = {"device_id": sim.device_ids[d], "group": group, "ts": ts, "value": v, "seq": seq,
                   "quantity": s.quantity, "unit": s.unit}
        if gateway_batches:
            per_group.setdefault(group, []).append(reading)
        else:
            out.append((group.encode(), json.dumps(reading, separators=(",", ":")).encode()))
    for group, readings in per_group.items():
        out.append((group.encode(), json.dumps(readings, separators=(",", ":")).encode()))
    return out


def feed(sim: FleetSimulator, send: Callable[[bytes, bytes], None], rate: float = 0.0,
         duration: float | None = None, gateway_batches: bool = False,
         stop: Callable[[], bool] = lambda: False, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Send every tick (``rate`` ticks per wall second, 0: as fast as possible); returns readings sent."""
    start = clock()
    sent = 0
    for i, tick in enumerate(sim.ticks()):
        if stop() or (duration is not None and clock() - start >= duration):
            break
        if rate > 0:
            wait = start + i / rate - clock()
            if wait > 0:
                sleep(wait)
        for key, value in encode_tick(sim, tick, gateway_batches):
            send(key, value)
        sent += len(tick.device)
    return sent
