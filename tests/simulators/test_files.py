"""Scenario files and suites (tuning vs reporting), and the collusion sweep."""

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from pydantic import ValidationError

from simulators import FleetSimulator, Scenario, load_scenario, load_suite, preset, sweep_scenarios
from simulators.files import scenario_paths
from tests.simulators.checks import assert_emission_consistent, assert_labels_match

ROOT = Path(__file__).resolve().parents[2] / "scenarios"
TUNING, REPORTING = ROOT / "tuning", ROOT / "reporting"
FILES = scenario_paths(TUNING) + scenario_paths(REPORTING) + scenario_paths(ROOT / "diagnostics")

#: what each suite must cover: (status, type) present somewhere
REQUIRED = {("attack", t) for t in ("bias", "drift", "stuck", "noise", "spike", "replay", "replay_other", "collusion",
                                    "intermittent", "camouflage", "poison", "sybil")} \
    | {("fault", t) for t in ("stuck", "battery", "restart")} | {("benign_event", t) for t in ("sun", "door")}


def _specs(scenarios):
    return [(s, a) for s in scenarios for a in s.attacks]


def _base(directory):
    """One scenario per file (its first seed)."""
    return [s.model_copy(update={"seed": s.meta["seeds"][0]}) for s in map(load_scenario, scenario_paths(directory))]


def _seeds(directory):
    return {seed for s in _base(directory) for seed in s.meta["seeds"]}


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_scenario_file_loads_runs_and_labels_match(path):
    s = load_scenario(path)
    assert Scenario.model_validate(s.model_dump()) == s
    assert s.name.startswith(path.parent.name + "-") and s.meta["suite"] == path.parent.name
    assert s.meta["seeds"] and s.meta["description"]
    sim = FleetSimulator(s)
    n_dev = len(sim.device_ids)
    assert n_dev <= 800 and s.samples <= 3000 and n_dev * s.samples <= 800_000      # modest runs
    assert s.delivery.active and s.signal.front_rate_per_day > 0                     # realistic honest fleet
    assert_labels_match(sim)
    assert_emission_consistent(sim)


@pytest.mark.parametrize("directory, purpose", [(TUNING, "tuning"), (REPORTING, "reporting")])
def test_suites_cover_every_behaviour(directory, purpose):
    base = _base(directory)
    assert {s.meta["suite"] for s in base} == {purpose} and len(base) == 10
    assert len(load_suite(directory)) == sum(len(s.meta["seeds"]) for s in base)
    kinds = {(a.status, a.type) for _, a in _specs(base)}
    assert REQUIRED <= kinds, REQUIRED - kinds
    assert any(not s.attacks for s in base)                                          # an honest fleet
    coll = [(s, a) for s, a in _specs(base) if a.type == "collusion" and a.start < s.samples // 2]
    in_spread = {s.target_count(a) / s.devices_per_group for s, a in coll if 0.25 <= (a.magnitude or 0) <= 1}
    gross = {s.target_count(a) / s.devices_per_group for s, a in coll if 3 <= (a.magnitude or 0) <= 10}
    assert len(in_spread) >= 3 and len(gross) >= 3 and max(in_spread | gross) == 0.5
    assert any(a.type == "collusion" and a.rate for _, a in _specs(base))                  # ramp
    assert any(a.type == "collusion" and a.start >= s.samples * 0.7 for s, a in _specs(base))   # sleepers
    mags = {a.magnitude for _, a in _specs(base) if a.type == "bias"}
    assert max(mags) >= 5 and min(mags) < 1                                          # gross and in-noise bias


def test_tuning_and_reporting_are_kept_apart():
    assert not _seeds(TUNING) & _seeds(REPORTING)
    tb, rb = _base(TUNING), _base(REPORTING)
    assert {s.devices_per_group for s in tb} == {20}                                 # groups of 20
    assert {s.devices_per_group for s in rb} - {20}                                  # other fleet sizes
    def strength(ss):
        return {(a.type, a.magnitude, a.rate, a.factor, a.lag, a.gap, a.period, a.duty, a.hour_start,
                 s.target_count(a), s.devices_per_group) for s, a in _specs(ss) if a.type != "stuck"}

    assert not strength(tb) & strength(rb)                   # other attack strengths or other fleet sizes
    assert {s.name for s in tb}.isdisjoint({s.name for s in rb})
    # the same scenario under another seed is another run
    a, b = load_suite(TUNING)[:2]
    assert a.name == b.name and a.seed != b.seed
    assert not np.array_equal(FleetSimulator(a).values, FleetSimulator(b).values, equal_nan=True)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_load_scenario_formats_and_overrides(tmp_path, fmt):
    s = preset("zoo")
    doc = s.model_dump(mode="json", exclude_none=True)
    path = tmp_path / f"s.{fmt}"
    path.write_text(yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc))
    assert load_scenario(path) == s and hash(load_scenario(path)) == hash(s)
    assert load_scenario(path, seed=7, groups=9).groups == 9


def test_load_scenario_toml_by_hand(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\ngroups = 2\ndevices_per_group = 20\nsamples = 100\n'
                    '[delivery]\ndropout_probability = 0.1\n'
                    '[[attacks]]\ntype = "camouflage"\ncount = 4\nstart = 10\n'
                    '[[attacks]]\ntype = "door"\nstart = 20\nend = 40\n')
    s = load_scenario(path)
    assert [a.type for a in s.attacks] == ["camouflage", "door"] and s.attacks[1].status == "benign_event"
    assert s.delivery.dropout_probability == 0.1


def test_load_scenario_rejects_bad_files(tmp_path):
    (tmp_path / "a.yaml").write_text("groups: 2\nattacks:\n  - {type: laser}\n")
    with pytest.raises(ValidationError, match="unknown attack type"):
        load_scenario(tmp_path / "a.yaml")
    (tmp_path / "b.txt").write_text("{}")
    with pytest.raises(ValueError, match="unknown scenario file type"):
        load_scenario(tmp_path / "b.txt")
    (tmp_path / "c.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="one mapping"):
        load_scenario(tmp_path / "c.yaml")


def test_load_suite_seeds(tmp_path):
    (tmp_path / "x.yaml").write_text("name: x\nsamples: 20\nmeta: {seeds: [5, 6]}\n")
    (tmp_path / "y.json").write_text('{"name": "y", "samples": 20, "seed": 3}')
    (tmp_path / "notes.txt").write_text("not a scenario")
    assert [(s.name, s.seed) for s in load_suite(tmp_path)] == [("x", 5), ("x", 6), ("y", 3)]
    assert [(s.name, s.seed, s.samples) for s in load_suite(tmp_path, seeds=[9], samples=30)] == \
        [("x", 9, 30), ("y", 9, 30)]


def test_sweep_grid():
    cells = sweep_scenarios()
    assert len(cells) == 7 * 5 and len({c.name for c in cells}) == 35
    for c in cells:
        f, o = c.meta["fraction"], c.meta["offset"]
        assert c.name == f"sweep-f{f:.2f}-o{o:.2f}" and c.meta["count"] == round(f * 20)
        assert c.devices_per_group == 20 and c.groups == 4
        if f == 0:
            assert c.attacks == ()
        else:
            assert len(c.attacks) == 4 and {a.group for a in c.attacks} == {0, 1, 2, 3}
            assert all(c.target_count(a) == round(f * 20) and a.magnitude == o for a in c.attacks)
    assert {c.target_count(a) for c in cells for a in c.attacks} == {1, 2, 4, 6, 8, 10}


def test_sweep_cell_runs_and_overrides():
    (cell,) = sweep_scenarios(fractions=(0.3,), offsets=(0.5,), groups=2, samples=600, seed=4,
                              delivery={"dropout_probability": 0.01})
    sim = FleetSimulator(cell)
    bad = [r for r in sim.labels() if r["status"] == "attack"]
    assert len(bad) == 12 and {r["collusion_set"] for r in bad} == {"ring-0", "ring-1"}
    assert sim.seed == 4 and np.isnan(sim.values).any()
    assert_labels_match(sim)


BARS, TUNING_BARS = ROOT / "bars", ROOT / "tuning-bars"


def test_bars_suite_is_the_tuning_bars_attacks_in_the_reporting_world():
    """scenarios/bars (reported on) holds many events of exactly one bar's kind; scenarios/tuning-bars
    (chosen on) the same attacks in the tuning world, with seeds of neither other suite."""
    bars, tuning = _base(BARS), _base(TUNING_BARS)
    assert [p.name for p in scenario_paths(BARS)] == [p.name for p in scenario_paths(TUNING_BARS)]
    assert {s.meta["suite"] for s in bars} == {"bars"} and {s.meta["suite"] for s in tuning} == {"tuning"}
    assert not _seeds(BARS) & (_seeds(TUNING) | _seeds(REPORTING) | _seeds(TUNING_BARS))
    assert _seeds(TUNING_BARS) <= _seeds(TUNING)
    reporting_world, tuning_world = _base(REPORTING)[0], _base(TUNING)[0]
    for b, t in zip(bars, tuning):
        assert b.attacks == t.attacks and b.groups == t.groups and b.samples == t.samples
        assert b.devices_per_group == t.devices_per_group == 20                     # the bars' groups of 20
        assert (b.signal, b.delivery) == (reporting_world.signal, reporting_world.delivery)
        assert (t.signal, t.delivery) == (tuning_world.signal, tuning_world.delivery)
        assert len(b.attacks) >= 24 and len({(a.type, a.magnitude, a.rate, a.count) for a in b.attacks}) <= 3
        assert_labels_match(FleetSimulator(b.model_copy(update={"samples": 600})))
