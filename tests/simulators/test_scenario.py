"""Scenario validation and presets."""

import pytest
from pydantic import ValidationError

from simulators import KINDS, PRESETS, AttackSpec, FleetSimulator, Scenario, preset


ORIGINAL_KINDS = {"bias", "drift", "stuck", "noise", "replay", "spike", "collusion"}


def _attacks(sim):
    return [r for r in sim.labels() if r["status"] != "honest"]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid_and_runnable(name):
    s = preset(name)
    assert isinstance(s, Scenario) and s.name == name
    assert Scenario.model_validate(s.model_dump()) == s
    sim = FleetSimulator(s)
    sybils = sum(len(p.rows) for p in sim.placements if p.kind.creates_devices)
    assert sim.values.shape == (s.groups * s.devices_per_group + sybils, s.samples)


def test_clean_has_no_attacks():
    assert PRESETS["clean"].attacks == ()
    assert {r["status"] for r in FleetSimulator(preset("clean")).labels()} == {"honest"}


@pytest.mark.parametrize("seed", range(5))
def test_demo_layout(seed):
    s = preset("demo", seed=seed)
    assert (s.groups, s.devices_per_group) == (4, 10)
    assert all(a.start >= 150 for a in s.attacks)
    bad = _attacks(FleetSimulator(s))
    bias = [r for r in bad if r["type"] == "bias"]
    coll = [r for r in bad if r["type"] == "collusion"]
    assert len(bias) == 1 and bias[0]["collusion_set"] is None
    assert len(coll) == 3 and len({r["collusion_set"] for r in coll}) == 1
    assert len({r["group"] for r in coll}) == 1 and coll[0]["group"] != bias[0]["group"]
    assert len(bad) == 4


@pytest.mark.parametrize("seed", range(5))
def test_mixed_has_every_kind_on_distinct_devices(seed):
    bad = _attacks(FleetSimulator(preset("mixed", seed=seed)))
    assert {r["type"] for r in bad} == ORIGINAL_KINDS and ORIGINAL_KINDS < set(KINDS)
    assert len({r["device_id"] for r in bad}) == len(bad)
    assert len({r["group"] for r in bad}) >= 4
    # every non-collusion attack sits in a group of its own
    groups = [r["group"] for r in bad if r["type"] != "collusion"]
    assert len(set(groups)) == len(groups)


def test_preset_overrides():
    s = preset("mixed", groups=3, devices_per_group=5, samples=600, seed=9)
    assert (s.groups, s.devices_per_group, s.samples, s.seed) == (3, 5, 600, 9)
    bad = _attacks(FleetSimulator(s))
    assert len({r["device_id"] for r in bad}) == len(bad) == 9      # shares groups, distinct devices
    assert PRESETS["mixed"].groups == 8                              # preset untouched
    with pytest.raises(KeyError):
        preset("nope")
    with pytest.raises(ValidationError):
        preset("demo", samples=100)                                  # attacks would start after the end


@pytest.mark.parametrize("kwargs, message", [
    ({"type": "laser"}, "unknown attack type"),
    ({"type": "bias", "rate": 1.0}, "takes no rate"),
    ({"type": "bias", "magnitude": 0.0}, "non-zero"),
    ({"type": "bias", "start": 10, "end": 10}, "end must be greater"),
    ({"type": "replay", "start": 10}, "start >= lag"),
    ({"type": "spike", "probability": 1.5}, "probability"),
    ({"type": "bias", "devices": (1, 1), "group": 0}, "distinct"),
])
def test_attack_spec_rejects(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        AttackSpec(**kwargs)


@pytest.mark.parametrize("spec, message", [
    ({"type": "bias", "start": 50}, "start 50 >= samples"),
    ({"type": "bias", "group": 2}, "out of range"),
    ({"type": "bias", "group": "site-09/temperature"}, "unknown group"),
    ({"type": "bias", "devices": ("site-00-dev-099",)}, "unknown device"),
    ({"type": "bias", "devices": ("site-00-dev-000", "site-01-dev-000")}, "one group"),
    ({"type": "bias", "devices": (0,)}, "need a group"),
    ({"type": "collusion", "count": 4}, "count 4 > devices_per_group"),
])
def test_scenario_rejects_attacks_that_do_not_fit(spec, message):
    with pytest.raises(ValidationError, match=message):
        Scenario(groups=2, devices_per_group=3, samples=50, attacks=[spec])


def test_end_past_the_run_is_clipped_and_open_ended():
    s = Scenario(groups=1, devices_per_group=2, samples=50, attacks=[{"type": "bias", "start": 10, "end": 99}])
    bad = [r for r in FleetSimulator(s).labels() if r["status"] != "honest"]
    assert bad[0]["end_ts"] is None


def test_seed_chosen_targets_run_out():
    s = Scenario(groups=1, devices_per_group=3, samples=20,
                 attacks=[{"type": "bias", "count": 2}, {"type": "collusion", "count": 3}])
    with pytest.raises(ValueError, match="untargeted"):
        FleetSimulator(s)
