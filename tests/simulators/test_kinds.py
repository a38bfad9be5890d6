"""New kinds: replay of another device, benign faults, collusion variants, poisoning, sybils, benign events.

Each changes exactly what its labels say (compared with the twin that leaves the kind out).
"""

import numpy as np
import pytest
from pydantic import ValidationError

from simulators import KINDS, AttackSpec, FleetSimulator, Scenario
from tests.simulators.checks import assert_emission_consistent, assert_labels_match, changed

ORIGINAL = {"bias", "drift", "stuck", "noise", "replay", "spike", "collusion"}
SAMPLES = 900

NEW = {
    "replay_other": dict(lag=20),
    "battery": dict(rate=0.01),
    "restart": dict(gap=12, magnitude=1.0),
    "intermittent": dict(count=4, magnitude=2.0, period=50, duty=0.4),
    "camouflage": dict(count=5, magnitude=3.0),
    "poison": dict(count=4, magnitude=1.0, hour_start=3, hour_end=5),
    "sybil": dict(count=25, magnitude=2.0),
    "sun": dict(count=5, magnitude=3.0),
    "door": dict(count=3, magnitude=-3.0),
}


def _sim(*specs, seed=0, groups=3, dpg=10, samples=SAMPLES, **kw):
    return FleetSimulator(Scenario(groups=groups, devices_per_group=dpg, samples=samples, attacks=specs, **kw), seed)


def _bad(sim, status=None):
    return [r for r in sim.labels() if r["status"] != "honest" and (status is None or r["status"] == status)]


def _row(sim, dev):
    return sim.device_ids.index(dev)


def test_every_kind_is_covered():
    assert set(KINDS) == ORIGINAL | set(NEW)


@pytest.mark.parametrize("kind", sorted(NEW))
@pytest.mark.parametrize("realistic", [False, True])
def test_changes_exactly_what_labels_say(kind, realistic):
    kw = {}
    if realistic:
        from simulators.presets import REALISTIC_DELIVERY, REALISTIC_SIGNAL
        kw = dict(signal=REALISTIC_SIGNAL, delivery=REALISTIC_DELIVERY, ts_jitter_seconds=2.0)
    spec = AttackSpec(type=kind, start=200, end=None if kind not in ("sun", "door") else 500, **NEW[kind])
    sim = _sim(spec, seed=3, **kw)
    bad = _bad(sim)
    assert bad and {r["type"] for r in bad} == {kind} and {r["status"] for r in bad} == {spec.status}
    assert_labels_match(sim)
    assert_emission_consistent(sim)
    assert all(r["params"]["sigma"] > 0 for r in bad)


def test_statuses_default_and_are_checked():
    assert AttackSpec(type="battery").status == "fault"
    assert AttackSpec(type="restart").status == "fault"
    assert AttackSpec(type="sun", end=10).status == "benign_event"
    assert AttackSpec(type="camouflage").status == "attack"
    assert AttackSpec(type="stuck", status="fault").status == "fault"
    for bad in ({"type": "sun", "end": 10, "status": "attack"}, {"type": "collusion", "status": "fault"},
                {"type": "bias", "status": "benign_event"}):
        with pytest.raises(ValidationError, match="cannot have status"):
            AttackSpec(**bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"type": "sun"}, "needs an end"),
    ({"type": "sybil", "devices": ("site-00-dev-000",)}, "creates new devices"),
    ({"type": "bias", "source": 1}, "takes no source"),
    ({"type": "intermittent", "duty": 1.0}, "duty"),
    ({"type": "intermittent", "period": 1}, "period"),
    ({"type": "poison", "hour_start": 3, "hour_end": 3}, "distinct hours"),
    ({"type": "restart", "gap": 0}, "gap"),
    ({"type": "replay_other", "lag": 10, "start": 5}, "start >= lag"),
    ({"type": "bias", "fraction": 0.2, "count": 2}, "not several"),
    ({"type": "battery", "rate": 0.0}, "rate"),
])
def test_new_specs_rejected(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        AttackSpec(**kwargs)


def test_fraction_sets_the_count():
    s = Scenario(groups=2, devices_per_group=20, samples=50,
                 attacks=[{"type": "collusion", "fraction": 0.25, "start": 10}])
    assert len(_bad(FleetSimulator(s))) == 5
    with pytest.raises(ValidationError, match="devices_per_group"):
        Scenario(groups=1, devices_per_group=4, samples=50,
                 attacks=[{"type": "collusion", "count": 5, "start": 10}])


def test_replay_other_copies_the_source_lag_earlier():
    sim = _sim(AttackSpec(type="replay_other", devices=("site-01-dev-002",), source="site-01-dev-007",
                          start=300, lag=40))
    twin = sim.twin("attack")
    t, s = _row(sim, "site-01-dev-002"), _row(sim, "site-01-dev-007")
    assert np.array_equal(sim.values[t, 300:], twin.values[s, 260:SAMPLES - 40])
    assert np.array_equal(sim.values[t, :300], twin.values[t, :300])
    assert np.array_equal(sim.ts, twin.ts)
    (r,) = _bad(sim)
    assert r["params"]["source"] == "site-01-dev-007" and r["params"]["lag"] == 40


def test_replay_other_source_drawn_in_group_and_index_form():
    sim = _sim(AttackSpec(type="replay_other", group=2, start=100, lag=0))
    (r,) = _bad(sim)
    assert r["params"]["source"] != r["device_id"] and r["params"]["source"].startswith("site-02-")
    row, src = _row(sim, r["device_id"]), _row(sim, r["params"]["source"])
    assert np.array_equal(sim.values[row, 100:], sim.values[src, 100:])      # live mirror
    sim = _sim(AttackSpec(type="replay_other", group=1, devices=(0,), source=4, start=100, lag=0))
    assert _bad(sim)[0]["params"]["source"] == "site-01-dev-004"
    with pytest.raises(ValidationError, match="unknown source"):
        _sim(AttackSpec(type="replay_other", start=100, source="site-09-dev-000"))


def test_battery_noise_grows():
    sim = _sim(AttackSpec(type="battery", devices=("site-00-dev-001",), start=100, rate=0.01))
    d = (sim.values - sim.twin("fault").values)[1] / sim.sigmas[1]
    assert (d[:100] == 0).all()
    early, late = d[100:300].std(), d[700:].std()
    assert late > 2.5 * early and abs(late / (0.01 * np.arange(601, 801).mean()) - 1) < 0.3


def test_restart_gap_then_resumes_with_jump_and_fresh_seq():
    sim = _sim(AttackSpec(type="restart", devices=("site-02-dev-003",), start=400, gap=20, magnitude=2.0))
    row = _row(sim, "site-02-dev-003")
    twin = sim.twin("fault")
    assert np.isnan(sim.values[row, 400:420]).all() and not np.isnan(sim.values[row, :400]).any()
    assert np.allclose(sim.values[row, 420:] - twin.values[row, 420:], 2.0 * sim.sigmas[row])
    assert sim.seq[row, 419] == 419 and sim.seq[row, 420] == 0 and sim.seq[row, -1] == SAMPLES - 421
    emitted = [r for r in sim.readings() if r["device_id"] == "site-02-dev-003"]
    assert len(emitted) == SAMPLES - 20 and [r["seq"] for r in emitted[399:402]] == [399, 0, 1]
    (r,) = _bad(sim)
    assert (r["status"], r["start_ts"], r["end_ts"]) == ("fault", sim.ts[row, 400], None)


def test_intermittent_is_labelled_per_on_interval():
    sim = _sim(AttackSpec(type="intermittent", group=1, count=3, start=100, end=700, magnitude=2.0,
                          period=100, duty=0.3, name="blinker"))
    bad = _bad(sim)
    rows = sorted({_row(sim, r["device_id"]) for r in bad})
    assert len(rows) == 3 and len(bad) == 3 * 6
    d = (sim.values - sim.twin("attack").values)[rows]
    on = np.zeros(SAMPLES, bool)
    for k in range(6):
        on[100 + 100 * k:130 + 100 * k] = True
    assert np.allclose(d[:, on], 2.0 * sim.sigmas[rows].mean()) and (d[:, ~on] == 0).all()
    r0 = [r for r in bad if r["device_id"] == sim.device_ids[rows[0]]]
    assert [r["start_ts"] for r in r0] == [sim.ts[rows[0], 100 + 100 * k] for k in range(6)]
    assert [r["end_ts"] for r in r0] == [sim.ts[rows[0], 129 + 100 * k] for k in range(6)]
    assert {r["collusion_set"] for r in bad} == {"blinker"}
    assert bad[0]["params"] == {"magnitude": 2.0, "period": 100, "duty": 0.3, "sigma": sim.sigmas[rows].mean()}


def test_intermittent_open_ended_last_burst():
    sim = _sim(AttackSpec(type="intermittent", group=0, count=2, start=810, period=60, duty=0.5))
    bad = _bad(sim)
    assert [r["end_ts"] is None for r in bad] == [False, True, False, True]   # 810-839, 870-899 (to the end)
    sim = _sim(AttackSpec(type="intermittent", group=0, count=2, start=800, period=60, duty=0.5))
    assert [r["end_ts"] is None for r in _bad(sim)] == [False] * 4            # 800-829, 860-889


def test_camouflage_member_sits_on_the_pulled_consensus():
    sim = _sim(AttackSpec(type="camouflage", group=0, count=4, start=200, magnitude=3.0, name="cam"),
               groups=2, dpg=20)
    bad = _bad(sim)
    roles = {r["device_id"]: r["params"]["role"] for r in bad}
    assert sorted(roles.values()) == ["camouflage", "shift", "shift", "shift"]
    cam = _row(sim, next(d for d, v in roles.items() if v == "camouflage"))
    shift = [_row(sim, d) for d, v in roles.items() if v == "shift"]
    others = [r for r in range(20) if r != cam and r not in shift]
    twin = sim.twin("attack")
    delta = 3.0 * sim.sigmas[[cam] + shift].mean()
    assert np.allclose(sim.values[shift, 200:] - twin.values[shift, 200:], delta)
    target = sim.values[others, 200:].mean(axis=0) + 3 * delta / 20
    resid = sim.values[cam, 200:] - target
    assert abs(resid.mean()) < 0.05 * sim.sigmas[cam] and resid.std() < 0.3 * sim.sigmas[cam]
    # it is closer to the poisoned group mean than any honest device
    poisoned = sim.values[:20, 200:].mean(axis=0)
    dist = np.abs(sim.values[:20, 200:] - poisoned).mean(axis=1)
    assert np.argmin(dist) == cam
    assert {r["collusion_set"] for r in bad} == {"cam"}


def test_camouflage_explicit_devices_first_is_the_camouflage():
    sim = _sim(AttackSpec(type="camouflage", devices=("site-01-dev-009", "site-01-dev-001", "site-01-dev-004"),
                          start=100))
    roles = {r["device_id"]: r["params"]["role"] for r in _bad(sim)}
    assert roles["site-01-dev-009"] == "camouflage"


def test_poison_only_in_chosen_hours():
    s = dict(interval_seconds=600.0, samples=1008)       # a week of 10-minute samples
    sim = _sim(AttackSpec(type="poison", group=0, count=3, start=144, magnitude=1.0, hour_start=22, hour_end=2),
               **s)
    twin = sim.twin("attack")
    d = sim.values - twin.values
    rows = sorted({_row(sim, r["device_id"]) for r in _bad(sim)})
    hour = (sim.times % 86400) / 3600
    window = ((hour >= 22) | (hour < 2)) & (np.arange(1008) >= 144)
    assert np.allclose(d[np.ix_(rows, np.flatnonzero(window))], sim.sigmas[rows].mean())
    assert (d[:, ~window] == 0).all() and (np.delete(d, rows, axis=0) == 0).all()
    bad = [r for r in _bad(sim) if r["device_id"] == sim.device_ids[rows[0]]]
    assert len(bad) == 7                 # day 1 00-02, nights 1/2 .. 5/6, day 6 22-24 (open: the run ends)
    assert (bad[0]["start_ts"] % 86400) / 3600 == 0.0 and bad[-1]["end_ts"] is None
    for r in bad[1:]:
        assert (r["start_ts"] % 86400) / 3600 == 22.0
    for r in bad[:-1]:
        assert abs((r["end_ts"] % 86400) / 3600 - (2 - 1 / 6)) < 1e-9


def test_sybil_flood_new_ids_at_once():
    sim = _sim(AttackSpec(type="sybil", group=1, count=30, start=500, magnitude=2.0), dpg=10)
    assert len(sim.device_ids) == 60 and sim.n_regular == 30
    new = sim.device_ids[30:]
    assert new[0] == "site-01-dev-010" and new[-1] == "site-01-dev-039"
    assert (sim.device_group[30:] == 1).all()
    assert np.isnan(sim.values[30:, :500]).all() and not np.isnan(sim.values[30:, 500:]).any()
    first = {}
    for i, r in enumerate(sim.readings()):
        first.setdefault(r["device_id"], i)
    assert min(first[d] for d in new) == 500 * 30 + 30 * 0 + 30 and max(first[d] for d in new) < 501 * 60
    resid = sim.values[30:, 500:] - sim.true_signal[1, 500:] - sim.offsets[30:, None]
    shift = 2.0 * sim.sigmas[30:].mean()
    assert abs(resid.mean() - shift) < 0.05 and np.allclose(resid.std(axis=1) / sim.sigmas[30:], 1, atol=0.1)
    bad = _bad(sim)
    assert len(bad) == 30 and {r["collusion_set"] for r in bad} == {"sybil-0"}
    assert {r["type"] for r in bad} == {"sybil"} and bad[0]["start_ts"] == sim.ts[30, 500]
    twin = sim.clean_twin()
    assert twin.device_ids == sim.device_ids and np.array_equal(twin.values[:30], sim.values[:30])
    assert np.isnan(twin.values[30:]).all() and len(twin.labels()) == 30
    assert not any(r["device_id"] in new for r in twin.readings())


def test_sybil_group_drawn_and_several_floods_number_on():
    sim = _sim(AttackSpec(type="sybil", count=3, start=10, end=50),
               AttackSpec(type="sybil", group=0, count=2, start=20),
               AttackSpec(type="sybil", group=0, count=2, start=30))
    ids = sim.device_ids[30:]
    g = int(sim.device_group[30])
    first = 13 if g == 0 else 10
    assert ids[:3] == [f"site-{g:02d}-dev-{k:03d}" for k in range(10, 13)]
    assert ids[3:] == [f"site-00-dev-{k:03d}" for k in range(first, first + 4)]
    assert len(set(sim.device_ids)) == 37
    assert {r["collusion_set"] for r in _bad(sim)} == {"sybil-0", "sybil-1", "sybil-2"}
    assert np.isnan(sim.values[30:33, 50:]).all()                                  # gone after end
    assert_labels_match(sim)


@pytest.mark.parametrize("kind, sign", [("sun", 1), ("door", -1)])
def test_benign_events_are_smooth_shared_and_labelled_apart(kind, sign):
    sim = _sim(AttackSpec(type=kind, group=2, count=4, start=300, end=540, name="e1"),
               AttackSpec(type="collusion", group=0, count=3, start=300))
    ev = _bad(sim, "benign_event")
    assert len(ev) == 4 and {r["type"] for r in ev} == {kind}
    assert all(r["collusion_set"] is None and r["params"]["event_id"] == "e1" for r in ev)
    assert {r["collusion_set"] for r in _bad(sim, "attack")} == {"collusion-0"}   # events don't use set ids
    rows = [_row(sim, r["device_id"]) for r in ev]
    d = (sim.values - sim.twin("benign_event").values)[rows, 300:540] / sim.sigmas[rows].mean()
    assert (np.sign(d) == sign).all()
    assert np.abs(np.diff(d, axis=1)).max() < 0.35                                # smooth
    peak = np.abs(d).max(axis=1)
    assert np.all((peak > 3 * 0.6) & (peak < 3 * 1.4)) and np.ptp(peak) > 0       # each device differently
    assert ev[0]["end_ts"] == sim.ts[rows[0], 539]
    events = [r for r in sim.labels() if r["status"] == "benign_event"]
    assert {r["params"]["event_id"] for r in events} == {"e1"}


def test_event_ids_default_and_count_apart():
    sim = _sim(AttackSpec(type="sun", start=10, end=60), AttackSpec(type="door", start=100, end=160),
               AttackSpec(type="collusion", start=10))
    assert {r["params"]["event_id"] for r in _bad(sim, "benign_event")} == {"event-0", "event-1"}
    assert {r["collusion_set"] for r in _bad(sim, "attack")} == {"collusion-0"}


def test_sleeper_is_honest_until_late_start():
    sim = _sim(AttackSpec(type="collusion", count=3, start=800, magnitude=2.0, name="sleeper"))
    d = changed(sim.values, sim.clean_twin().values)
    assert not d[:, :800].any() and d[:, 800:].any()
    assert_labels_match(sim)


def test_faults_events_and_attacks_together_on_realistic_fleet():
    from simulators import preset
    for name in ("realistic", "zoo"):
        sim = FleetSimulator(preset(name, samples=1000), seed=5)
        for statuses in (("attack",), ("fault",), ("benign_event",), ("attack", "fault", "benign_event")):
            assert_labels_match(sim, statuses)
        assert_emission_consistent(sim)
