"""Shared checks: the ground truth matches what the simulator emitted."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from simulators import FleetSimulator

STATUSES = ("attack", "fault", "benign_event")


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cells that differ (NaN equals NaN)."""
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def label_masks(sim: FleetSimulator, statuses=STATUSES) -> dict[int, np.ndarray]:
    """Row -> bool (samples,) mask of the labelled intervals of ``statuses``."""
    out: dict[int, np.ndarray] = {}
    rows = {d: i for i, d in enumerate(sim.device_ids)}
    for r in sim.labels():
        if r["status"] not in statuses:
            continue
        row = rows[r["device_id"]]
        ts = sim.ts[row]
        end = np.inf if r["end_ts"] is None else r["end_ts"]
        m = (ts >= r["start_ts"]) & (ts <= end)
        assert m.any(), r
        out[row] = out.get(row, np.zeros(ts.size, bool)) | m
    return out


def assert_labels_match(sim: FleetSimulator, statuses=STATUSES, dense=True) -> None:
    """Against the twin without ``statuses``: every changed cell lies in a labelled interval of
    those statuses, unlabelled devices are unchanged, and (``dense``) every labelled interval has
    changed cells (all of its delivered cells; spike and restart only some)."""
    twin = sim.twin(*statuses)
    assert twin.device_ids == sim.device_ids and np.array_equal(twin.ts, sim.ts)
    masks = label_masks(sim, statuses)
    diff = changed(sim.values, twin.values)
    for row in range(len(sim.device_ids)):
        m = masks.get(row, np.zeros(sim.scenario.samples, bool))
        assert not diff[row, ~m].any(), (sim.device_ids[row], np.flatnonzero(diff[row] & ~m)[:5])
    twin_labelled = {r["device_id"] for r in twin.labels()}
    for row in range(sim.n_regular, len(sim.device_ids)):   # sybils: absent from a twin without them
        if row in masks:
            assert np.isnan(twin.values[row]).all() and sim.device_ids[row] not in twin_labelled
    if not dense:
        return
    rows = {d: i for i, d in enumerate(sim.device_ids)}
    for r in sim.labels():
        if r["status"] not in statuses or r["type"] in ("spike", "restart"):
            continue                                          # sparse (restart: only its gap if no jump)
        row = rows[r["device_id"]]
        ts = sim.ts[row]
        end = np.inf if r["end_ts"] is None else r["end_ts"]
        m = (ts >= r["start_ts"]) & (ts <= end)
        sent = ~np.isnan(twin.values[row]) | ~np.isnan(sim.values[row])
        assert diff[row, m & sent].all(), (r, np.flatnonzero(~diff[row] & m & sent)[:5])


def assert_emission_consistent(sim: FleetSimulator) -> None:
    """Every delivered cell is emitted once (plus identical duplicates), nothing else; late
    readings keep their ts and value, and lateness is bounded."""
    readings = list(sim.readings())
    tick, erow, ecol = sim.emission
    assert len(readings) == tick.size and np.all(np.diff(tick) >= 0)
    rows = {d: i for i, d in enumerate(sim.device_ids)}
    assert [rows[r["device_id"]] for r in readings] == erow.tolist()
    assert [r["ts"] for r in readings] == sim.ts[erow, ecol].tolist()
    assert [r["value"] for r in readings] == sim.values[erow, ecol].tolist()
    assert [r["seq"] for r in readings] == sim.seq[erow, ecol].tolist()
    groups = [sim.groups[g] for g in sim.device_group]
    assert all(r["group"] == groups[rows[r["device_id"]]] for r in readings)
    assert ((ecol <= tick) & (tick <= ecol + 2 * sim.scenario.delivery.late_max_samples)).all()
    present = ~np.isnan(sim.values)
    count = np.zeros(present.shape, dtype=np.int64)
    np.add.at(count, (erow, ecol), 1)
    assert (count[present] >= 1).all() and (count[~present] == 0).all()
    if not sim.scenario.delivery.duplicate_probability:
        assert (count[present] == 1).all()


def per_device_order(sim: FleetSimulator) -> dict[str, list[int]]:
    """Device id -> sample indices in emission order."""
    tick, erow, ecol = sim.emission
    out = defaultdict(list)
    for row, col in zip(erow.tolist(), ecol.tolist()):
        out[sim.device_ids[row]].append(col)
    return out
