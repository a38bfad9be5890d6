"""The clean twin (same world, no attacks) and the harness's `EvalData`."""

import numpy as np
import pytest

from simulators import AttackSpec, FleetSimulator, Scenario, preset, to_eval_data
from tests.simulators.checks import changed, label_masks


def _zoo(seed=2, samples=1200):
    return FleetSimulator(preset("zoo", samples=samples), seed=seed)


def test_clean_twin_keeps_faults_events_and_honest_readings():
    sim = _zoo()
    twin = sim.clean_twin()
    n = sim.n_regular
    assert twin.exclude == {"attack"} and n < len(sim.device_ids) and twin.device_ids == sim.device_ids
    assert np.array_equal(twin.true_signal, sim.true_signal) and np.array_equal(twin.ts, sim.ts)
    assert np.array_equal(twin.sigmas, sim.sigmas) and np.isnan(twin.values[n:]).all()
    assert np.array_equal(twin.device_group, sim.device_group)
    labels = twin.labels()
    assert {r["status"] for r in labels} == {"honest", "fault", "benign_event"}
    keep = [r for r in sim.labels() if r["status"] in ("fault", "benign_event")]
    assert [r for r in labels if r["status"] != "honest"] == keep           # same devices, same intervals
    attacked = label_masks(sim, ("attack",))
    diff = changed(sim.values, twin.values)
    for row in range(len(sim.device_ids)):
        if row not in attacked:
            assert np.array_equal(sim.values[row], twin.values[row], equal_nan=True)
        else:
            assert not diff[row, ~attacked[row]].any()
    assert np.array_equal(np.isnan(sim.values) & ~diff, np.isnan(twin.values) & ~diff)


def test_twin_does_not_move_seed_chosen_faults():
    s = Scenario(groups=3, devices_per_group=5, samples=300, attacks=[
        AttackSpec(type="bias", count=2, start=50), AttackSpec(type="stuck", status="fault", count=2, start=60),
        AttackSpec(type="sun", count=2, start=70, end=120)])
    sim = FleetSimulator(s, seed=1)
    twin = sim.clean_twin()
    assert [(p.spec_index, p.rows.tolist()) for p in twin.placements] == \
        [(p.spec_index, p.rows.tolist()) for p in sim.placements if p.status != "attack"]
    honest = sim.twin("attack", "fault", "benign_event")
    assert honest.placements == [] and {r["status"] for r in honest.labels()} == {"honest"}
    with pytest.raises(ValueError, match="unknown statuses"):
        FleetSimulator(s, exclude={"bogus"})


def test_to_eval_data():
    from monitor.evaluation.data import STATUSES, EvalData

    sim = _zoo(seed=4)
    data = to_eval_data(sim)
    assert isinstance(data, EvalData) and data.name == "zoo@4" and data.interval == 60.0
    D, T = len(sim.device_ids), sim.scenario.samples
    assert data.values.shape == data.ts.shape == data.clean_values.shape == (D, T)
    assert data.truth.shape == (sim.scenario.groups, T) and np.array_equal(data.truth, sim.true_signal)
    assert data.sigma.shape == (D,) and data.device_group.tolist() == sim.device_group.tolist()
    assert data.device_ids == sim.device_ids and data.groups == sim.groups
    assert data.labels == sim.labels() and {r["status"] for r in data.labels} <= set(STATUSES)
    n = sim.n_regular
    assert np.isnan(data.clean_values[n:]).all() and data.meta["sybil_devices"] == D - n
    assert np.array_equal(data.clean_values, sim.clean_twin().values, equal_nan=True)
    twin = to_eval_data(sim.clean_twin())                       # the twin as its own EvalData: same rows
    assert twin.device_ids == data.device_ids and twin.values.shape == data.values.shape
    assert {r["status"] for r in twin.labels} == {"honest", "fault", "benign_event"}
    assert len({r["device_id"] for r in twin.labels}) == n
    emitted = list(data.readings())
    assert emitted == list(sim.readings()) and len(emitted) != np.isfinite(data.values).sum()   # duplicates kept
    g = int(sim.device_group[-1])
    m = data.group_matrix(g)
    assert m.shape == (T, int((sim.device_group == g).sum()))
    assert np.isnan(data.group_matrix(g, clean=True)[:, -1]).all()                 # sybil: absent in clean world
    data.values[0, 0] = -1.0
    assert sim.values[0, 0] != -1.0                                                # a copy


def test_to_eval_data_from_scenario_and_honest_match():
    s = preset("demo", seed=3, samples=400)
    data = to_eval_data(s, name="x")
    sim = FleetSimulator(s)
    assert data.name == "x" and np.array_equal(data.values, sim.values)
    bad = {r["device_id"] for r in sim.labels() if r["status"] == "attack"}
    for d, dev in enumerate(sim.device_ids):
        same = np.array_equal(data.values[d], data.clean_values[d])
        assert same == (dev not in bad)
