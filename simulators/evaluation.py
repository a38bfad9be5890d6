"""A simulated run as the evaluation harness's `EvalData` (monitor/evaluation/data.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulators.engine import FleetSimulator
from simulators.scenario import Scenario

if TYPE_CHECKING:
    from monitor.evaluation.data import EvalData


def to_eval_data(sim: FleetSimulator | Scenario, name: str | None = None) -> EvalData:
    """``sim`` (or a scenario, run with its seed) with its clean twin, truth and labels.

    ``values``: NaN where nothing was sent; ``clean_values``: the clean twin
    (no attacks; faults and benign events kept; sybil rows all NaN);
    ``emission``: `FleetSimulator.readings` (duplicates and late readings in
    sending order).  ``name`` defaults to ``<scenario name>@<seed>``.
    """
    from monitor.evaluation.data import EvalData

    if isinstance(sim, Scenario):
        sim = FleetSimulator(sim)
    twin = sim.clean_twin()
    assert twin.device_ids == sim.device_ids
    s = sim.scenario
    return EvalData(
        name=name or f"{s.name}@{sim.seed}",
        interval=s.interval_seconds,
        device_ids=sim.device_ids,
        groups=sim.groups,
        device_group=sim.device_group,
        ts=np.array(sim.ts),
        values=np.array(sim.values),
        sigma=sim.sigmas,
        labels=sim.labels(),
        clean_values=np.array(twin.values),
        truth=np.array(sim.true_signal),
        emission=sim.readings,
        meta={"source": "simulator", "scenario": s.name, "seed": sim.seed,
              "sybil_devices": len(sim.device_ids) - sim.n_regular},
    )
