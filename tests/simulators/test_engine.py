"""Honest world, determinism, output contract, speed."""

import doctest
import importlib
import json
import math
import re
import time

import numpy as np
import pytest

from simulators import FleetSimulator, Scenario, SignalParams, preset

ID_RE = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")


def _readings(sim):
    return list(sim.readings())


def test_same_seed_same_output():
    a, b = FleetSimulator(preset("mixed"), seed=7), FleetSimulator(preset("mixed"), seed=7)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.ts, b.ts)
    assert a.labels() == b.labels()
    assert _readings(a) == _readings(b)


def test_seed_defaults_to_scenario_seed():
    a = FleetSimulator(preset("demo", seed=4))
    b = FleetSimulator(preset("demo"), seed=4)
    assert a.seed == 4 and np.array_equal(a.values, b.values) and a.labels() == b.labels()


def test_different_seeds_differ():
    a, b = FleetSimulator(preset("mixed"), seed=1), FleetSimulator(preset("mixed"), seed=2)
    assert not np.allclose(a.values, b.values)
    assert not np.allclose(a.true_signal, b.true_signal)
    assert not np.allclose(a.sigmas, b.sigmas)


def test_layout_and_naming():
    sim = FleetSimulator(Scenario(groups=3, devices_per_group=4, samples=5))
    assert sim.groups == ["site-00/temperature", "site-01/temperature", "site-02/temperature"]
    assert sim.device_ids[:2] == ["site-00-dev-000", "site-00-dev-001"]
    assert sim.device_ids[-1] == "site-02-dev-003"
    assert sim.device_group.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert sim.true_signal.shape == (3, 5)


def test_honest_devices_track_signal_plus_offset():
    sim = FleetSimulator(preset("clean", samples=2000), seed=11)
    resid = sim.values - sim.true_signal[sim.device_group] - sim.offsets[:, None]
    z = resid / sim.sigmas[:, None]
    assert np.abs(z).max() < 5.5
    assert np.all(np.abs(z.std(axis=1) - 1) < 0.1)
    assert np.all(np.abs(z.mean(axis=1)) < 0.1)
    rel = sim.sigmas / SignalParams().noise_sigma
    assert rel.min() >= 0.5 and rel.max() <= 1.5 and np.ptp(rel) > 0.3   # σ differs per device


def test_true_signal_daily_cycle():
    flat = SignalParams(weather_sigma=0.0, group_level_sigma=0.0, daily_amplitude=3.0, daily_peak_hour=15.0)
    sim = FleetSimulator(Scenario(groups=2, samples=3 * 1440, signal=flat))
    sig = sim.true_signal
    assert np.allclose(sig[:, :1440], sig[:, 1440:2880])          # 86400 s period at 60 s interval
    assert np.argmax(sig[0, :1440]) == 15 * 60                      # peak at 15:00 UTC
    assert np.isclose(np.ptp(sig[0]), 6.0, atol=1e-6)


def test_weather_is_slow_and_groups_differ():
    sim = FleetSimulator(Scenario(groups=4, samples=2000, signal=SignalParams(daily_amplitude=0.0)), seed=3)
    w = sim.true_signal - sim.true_signal.mean(axis=1, keepdims=True)
    step = np.diff(w, axis=1).std()
    assert step < 0.2 * w.std()                                     # AR(1) moves slowly
    assert len({round(float(x), 6) for x in sim.true_signal[:, 0]}) == 4


def test_ticks_are_vectorised_and_aligned():
    sim = FleetSimulator(preset("demo", samples=400), seed=2)
    ticks = list(sim.ticks())
    assert len(ticks) == 400
    for t in (ticks[0], ticks[-1]):
        assert t.device.tolist() == list(range(40))
        assert t.ts.shape == t.value.shape == t.seq.shape == (40,)
        assert np.array_equal(t.value, sim.values[:, t.index])
        assert np.all(t.seq == t.index)
    assert np.all(ticks[1].ts - ticks[0].ts == 60.0)
    assert ticks[0].ts[0] == 1_767_225_600.0


def test_readings_satisfy_contract():
    sim = FleetSimulator(preset("mixed", samples=500, ts_jitter_seconds=5.0), seed=5)
    rs = _readings(sim)
    assert len(rs) == 80 * 500
    last = {}
    for r in rs:
        assert ID_RE.match(r["device_id"])
        assert isinstance(r["group"], str) and re.match(r"^site-\d{2}/temperature$", r["group"])
        assert r["device_id"].startswith(r["group"].split("/")[0] + "-dev-")
        assert type(r["ts"]) is float and math.isfinite(r["ts"])
        assert type(r["value"]) is float and math.isfinite(r["value"])
        assert type(r["seq"]) is int and r["seq"] >= 0
        assert r["quantity"] == "temperature" and r["unit"] == "degC"
        prev = last.get(r["device_id"])
        if prev is not None:
            assert r["seq"] == prev["seq"] + 1 and r["ts"] > prev["ts"]
        last[r["device_id"]] = r
    json.loads(json.dumps(rs[:100], allow_nan=False))


def test_readings_validate_against_product_schema():
    schema = pytest.importorskip("monitor.schema")
    sim = FleetSimulator(preset("mixed", samples=500))
    for r in sim.readings():
        schema.Reading.model_validate(r)


def test_unit_optional():
    r = next(FleetSimulator(Scenario(samples=2, unit=None)).readings())
    assert "unit" not in r and r["quantity"] == "temperature"


def test_outputs_are_read_only():
    sim = FleetSimulator(preset("demo", samples=400))
    with pytest.raises(ValueError):
        sim.values[0, 0] = 1.0
    sim.sigmas[0] = 99.0
    assert sim.sigmas[0] != 99.0


def test_speed_40_devices_2000_samples():
    s = preset("mixed", groups=4, devices_per_group=10, samples=2000)
    t0 = time.perf_counter()
    sim = FleetSimulator(s)
    n = sum(1 for _ in sim.readings())
    sim.labels()
    elapsed = time.perf_counter() - t0
    assert n == 80_000 and elapsed < 0.5, elapsed


@pytest.mark.parametrize("module", ["simulators", "simulators.attacks", "simulators.scenario",
                                    "simulators.world", "simulators.engine", "simulators.presets"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0 and result.attempted > 0
