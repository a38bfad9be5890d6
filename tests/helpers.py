"""Small shared helpers for the tests: run simulated readings through the pipeline."""

from __future__ import annotations

import numpy as np

from monitor.config import DetectionSettings
from monitor.ingest.decode import DecodedBatch
from monitor.pipeline import Pipeline
from monitor.schema import Alert
from simulators import FleetSimulator, preset


def batches(readings: list[dict], size: int):
    for i in range(0, len(readings), size):
        chunk = readings[i:i + size]
        yield DecodedBatch(device_ids=[r["device_id"] for r in chunk], groups=[r["group"] for r in chunk],
                           ts=np.array([float(r["ts"]) for r in chunk]), values=np.array([float(r["value"]) for r in chunk]),
                           seq=np.array([-1 if r.get("seq") is None else int(r["seq"]) for r in chunk], dtype=np.int64))


def run_pipeline(readings: list[dict], batch_size: int = 4000, settings: DetectionSettings | None = None,
                 window_seconds: float = 60.0, flush: bool = True,
                 record: bool = False) -> tuple[Pipeline, list[Alert]]:
    p = Pipeline(settings or DetectionSettings(), window_seconds=window_seconds, record=record)
    alerts: list[Alert] = []
    for b in batches(readings, batch_size):
        alerts += p.process(b).alerts
    if flush:
        alerts += p.flush().alerts
    return p, alerts


def simulate(name: str = "demo", seed: int = 0, **overrides) -> FleetSimulator:
    return FleetSimulator(preset(name, **overrides), seed=seed)


def key(a: Alert) -> tuple:
    return (a.alert_id, a.state, a.kind, a.type, tuple(a.devices), a.onset_ts, a.ts)


def attackers(sim: FleetSimulator) -> set[str]:
    return {r["device_id"] for r in sim.labels() if r["status"] != "honest"}


def named(alerts: list[Alert], kinds=("device", "collusion")) -> set[str]:
    return {d for a in alerts if a.state == "firing" and a.kind in kinds for d in a.devices}
