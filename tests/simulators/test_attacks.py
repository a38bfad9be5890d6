"""Each attack changes exactly the labelled devices, from the labelled start, as specified."""

import numpy as np
import pytest

from simulators import KINDS, AttackSpec, FleetSimulator, Scenario, preset

SAMPLES = 600


def _pair(*specs, seed=0, **kw):
    """Simulator with the attacks and its honest twin (same seed, no attacks)."""
    s = Scenario(groups=3, devices_per_group=6, samples=SAMPLES, attacks=specs, **kw)
    return FleetSimulator(s, seed), FleetSimulator(s.model_copy(update={"attacks": ()}), seed)


def _changed(sim, twin):
    return sim.values != twin.values


def _rows(sim, recs):
    return sorted(sim.device_ids.index(r["device_id"]) for r in recs)


def _attack_labels(sim):
    return [r for r in sim.labels() if r["status"] != "honest"]


ONE_OF_EACH = {
    "bias": dict(magnitude=3.0),
    "drift": dict(rate=0.05),
    "stuck": dict(),
    "noise": dict(factor=2.0),
    "replay": dict(lag=30),
    "spike": dict(magnitude=6.0, probability=0.1),
    "collusion": dict(magnitude=2.0, rate=0.01),
}


def test_every_kind_is_covered():
    from tests.simulators.test_kinds import NEW                      # the newer kinds are tested there
    assert set(ONE_OF_EACH) | set(NEW) == set(KINDS) and not set(ONE_OF_EACH) & set(NEW)


@pytest.mark.parametrize("kind", sorted(ONE_OF_EACH))
@pytest.mark.parametrize("end", [None, 450])
def test_changes_exactly_labelled_devices_and_window(kind, end):
    start = 200
    sim, twin = _pair(AttackSpec(type=kind, start=start, end=end, **ONE_OF_EACH[kind]), seed=4)
    labels = _attack_labels(sim)
    assert len(labels) == (3 if kind == "collusion" else 1)
    assert {r["type"] for r in labels} == {kind} and len({r["group"] for r in labels}) == 1
    changed = _changed(sim, twin)
    rows = _rows(sim, labels)
    assert np.flatnonzero(changed.any(axis=1)).tolist() == rows
    stop = SAMPLES if end is None else end
    assert not changed[:, :start].any() and not changed[:, stop:].any()
    if kind == "spike":
        assert changed[rows, start:stop].sum() >= 5
    else:
        assert changed[rows, start:stop].all()
    for r in labels:
        row = sim.device_ids.index(r["device_id"])
        assert r["start_ts"] == sim.ts[row, start]
        assert r["end_ts"] == (None if end is None else sim.ts[row, end - 1])
        assert r["status"] == "attack" and r["group"] == sim.groups[sim.device_group[row]]


def test_bias_and_drift_magnitudes_in_device_sigma():
    sim, twin = _pair(AttackSpec(type="bias", group=0, devices=(1,), start=100, magnitude=3.0),
                      AttackSpec(type="drift", group=1, devices=(2,), start=100, rate=0.05))
    d = sim.values - twin.values
    s = sim.sigmas
    assert np.allclose(d[1, 100:], 3.0 * s[1])
    assert np.allclose(d[8, 100:], 0.05 * s[8] * np.arange(1, SAMPLES - 99))


def test_stuck_freezes_last_value_before_onset():
    sim, twin = _pair(AttackSpec(type="stuck", devices=("site-02-dev-003",), start=300, end=400))
    row = sim.device_ids.index("site-02-dev-003")
    assert np.all(sim.values[row, 300:400] == twin.values[row, 299])
    assert np.array_equal(sim.values[row, 400:], twin.values[row, 400:])


def test_replay_resends_own_readings_lag_earlier_with_current_ts():
    sim, twin = _pair(AttackSpec(type="replay", devices=("site-01-dev-000",), start=250, lag=60))
    row = sim.device_ids.index("site-01-dev-000")
    v = sim.values[row]
    assert np.array_equal(v[250:], v[190:SAMPLES - 60])
    assert np.array_equal(v[250:310], twin.values[row, 190:250])
    assert np.array_equal(sim.ts, twin.ts)                         # timestamps stay current


def test_noise_injection_scales_spread():
    sim, twin = _pair(AttackSpec(type="noise", group=0, count=1, start=100, factor=4.0), seed=2)
    row = _rows(sim, _attack_labels(sim))[0]
    extra = (sim.values - twin.values)[row, 100:] / sim.sigmas[row]
    assert abs(extra.std() - 4.0) < 0.5 and abs(extra.mean()) < 0.5


def test_spikes_are_rare_and_large():
    sim, twin = _pair(AttackSpec(type="spike", group=0, count=1, start=100, magnitude=8.0, probability=0.05))
    row = _rows(sim, _attack_labels(sim))[0]
    d = (sim.values - twin.values)[row, 100:] / sim.sigmas[row]
    hits = d[d != 0]
    assert np.allclose(np.abs(hits), 8.0)
    assert 0.02 < hits.size / d.size < 0.09
    assert (hits > 0).any() and (hits < 0).any()


def test_collusion_members_shift_together():
    sim, twin = _pair(AttackSpec(type="collusion", group="site-01/temperature", count=3, start=150,
                                 magnitude=2.0, rate=0.01, name="ring-a"))
    labels = _attack_labels(sim)
    rows = _rows(sim, labels)
    assert {r["collusion_set"] for r in labels} == {"ring-a"}
    assert all(sim.device_group[r] == 1 for r in rows)
    d = (sim.values - twin.values)[rows, 150:]
    assert np.allclose(d, d[0])                                      # common offset
    scale = sim.sigmas[rows].mean()
    assert np.allclose(d[0], scale * (2.0 + 0.01 * np.arange(1, SAMPLES - 149)))
    assert labels[0]["params"] == {"magnitude": 2.0, "rate": 0.01, "sigma": scale}


def test_collusion_named_members():
    members = ("site-00-dev-001", "site-00-dev-004", "site-00-dev-005")
    sim, _ = _pair(AttackSpec(type="collusion", devices=members, start=10))
    assert [r["device_id"] for r in _attack_labels(sim)] == list(members)


def test_multi_device_non_shared_attack_gets_one_record_each():
    sim, twin = _pair(AttackSpec(type="bias", group=2, count=2, start=50))
    labels = _attack_labels(sim)
    assert len(labels) == 2 and all(r["collusion_set"] is None for r in labels)
    assert np.flatnonzero(_changed(sim, twin).any(axis=1)).tolist() == _rows(sim, labels)


def test_fault_status_and_overlapping_attacks():
    dev = "site-00-dev-002"
    sim, _ = _pair(AttackSpec(type="stuck", status="fault", devices=(dev,), start=100, end=200),
                   AttackSpec(type="bias", devices=(dev,), start=300))
    recs = [r for r in sim.labels() if r["device_id"] == dev]
    assert [(r["status"], r["type"]) for r in recs] == [("fault", "stuck"), ("attack", "bias")]
    assert sum(r["device_id"] == dev for r in sim.labels()) == 2


@pytest.mark.parametrize("name, seed", [("demo", 0), ("demo", 8), ("mixed", 0), ("mixed", 5)])
def test_preset_labels_match_emitted(name, seed):
    s = preset(name, seed=seed)
    sim, twin = FleetSimulator(s), FleetSimulator(s.model_copy(update={"attacks": ()}))
    labels = sim.labels()
    assert sorted({r["device_id"] for r in labels}) == sorted(sim.device_ids)   # every device labelled
    changed = _changed(sim, twin)
    bad = _attack_labels(sim)
    assert np.flatnonzero(changed.any(axis=1)).tolist() == _rows(sim, bad)
    for r in bad:
        row = sim.device_ids.index(r["device_id"])
        ts = sim.ts[row]
        end = np.inf if r["end_ts"] is None else r["end_ts"]
        inside = (ts >= r["start_ts"]) & (ts <= end)
        assert not changed[row, ~inside].any()
        first = ts[np.argmax(changed[row])]
        if r["type"] == "spike":
            assert first >= r["start_ts"]
        else:
            assert first == r["start_ts"]
    for r in labels:
        if r["status"] == "honest":
            assert r["type"] is None and r["params"] == {} and r["end_ts"] is None
