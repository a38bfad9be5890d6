"""The richer honest world (slow cycles, fronts, correlated groups, calibration drift) and honest
delivery imperfections (dropouts, gaps, duplicates, late messages, clock skew)."""

import numpy as np
import pytest

from simulators import DeliveryParams, FleetSimulator, Scenario, SignalParams, preset, world
from simulators.engine import stream
from tests.simulators.checks import assert_emission_consistent, per_device_order

QUIET = dict(weather_sigma=0.0, group_level_sigma=0.0, daily_amplitude=0.0)


def _sim(seed=0, signal=None, delivery=None, **kw):
    kw.setdefault("groups", 4)
    kw.setdefault("devices_per_group", 10)
    kw.setdefault("samples", 1440)
    return FleetSimulator(Scenario(signal=signal or SignalParams(), delivery=delivery or DeliveryParams(), **kw), seed)


# --- world -----------------------------------------------------------------------

def test_slow_cycle_is_a_multi_day_cosine():
    sim = _sim(signal=SignalParams(slow_cycles=((2.0, 1.5),), **QUIET), groups=2, samples=4 * 288,
               interval_seconds=300.0)
    sig = sim.true_signal - 20.0
    assert np.allclose(sig[0], sig[1])                                    # shared by all groups
    assert np.isclose(sig[0].max(), 1.5, atol=1e-3) and np.isclose(sig[0].min(), -1.5, atol=1e-3)
    assert np.allclose(sig[0, :576], sig[0, 576:])                        # 2-day period


def test_fronts_step_relax_and_sweep_across_groups():
    p = SignalParams(front_rate_per_day=3.0, front_sigma=2.0, front_rise_minutes=20, front_relax_hours=6,
                     front_sweep_minutes=30, **QUIET)
    ts = 1_767_225_600.0 + 60.0 * np.arange(4 * 1440)
    f = world.fronts(ts, 3, p, stream(1, "world-fronts"))
    assert np.abs(f).max() > 1.0
    assert np.allclose(f[1, 30:], f[0, :-30]) and np.allclose(f[2, 60:], f[0, :-60])   # 30 min per group
    # step-like: the fastest 1-minute moves are much larger than typical ones, and it relaxes
    steps = np.abs(np.diff(f[0]))
    assert steps.max() > 20 * np.median(steps)
    sim = _sim(seed=1, signal=p, samples=4 * 1440, groups=3)
    assert np.allclose(sim.true_signal - 20.0, f)


def test_neighbouring_groups_are_correlated():
    ind = _sim(seed=2, signal=SignalParams(daily_amplitude=0.0, weather_tau_seconds=1800), groups=8, samples=3000)
    near = _sim(seed=2, signal=SignalParams(daily_amplitude=0.0, weather_tau_seconds=1800, neighbour_scale=2.0),
                groups=8, samples=3000)
    reg = _sim(seed=2, signal=SignalParams(daily_amplitude=0.0, weather_tau_seconds=1800, regional_fraction=0.8),
               groups=8, samples=3000)

    def corr(sim):
        return np.corrcoef(sim.true_signal)

    c0, cn, cr = corr(ind), corr(near), corr(reg)
    off = ~np.eye(8, dtype=bool)
    assert np.abs(c0[off]).mean() < 0.3
    assert np.mean([cn[g, g + 1] for g in range(7)]) > 0.6 > np.mean([cn[g, g + 5] for g in range(3)])
    assert cr[off].mean() > 0.6
    # the weather keeps its variance
    for sim in (near, reg):
        assert 0.6 < (sim.true_signal - sim.true_signal.mean(axis=1, keepdims=True)).std() < 1.4


def test_natural_calibration_drift_is_honest_and_linear():
    sim = _sim(seed=3, signal=SignalParams(drift_sigma=0.5), samples=2880)
    plain = _sim(seed=3, samples=2880)
    days = (sim.times - sim.times[0]) / 86400
    assert np.allclose(sim.values - plain.values, sim.drift_rates[:, None] * days)
    assert np.ptp(sim.drift_rates) > 0.5 and not plain.drift_rates.any()
    assert {r["status"] for r in sim.labels()} == {"honest"}


def test_each_world_piece_leaves_the_devices_alone():
    base = _sim(seed=4)
    for extra in (dict(slow_cycles=((3.0, 1.0),)), dict(front_rate_per_day=2.0), dict(regional_fraction=0.5),
                  dict(neighbour_scale=1.0)):
        sim = _sim(seed=4, signal=SignalParams(**extra))
        d = (sim.values - base.values) - (sim.true_signal - base.true_signal)[sim.device_group]
        assert np.allclose(d, 0) and not np.allclose(sim.true_signal, base.true_signal)
        assert np.array_equal(sim.sigmas, base.sigmas) and np.array_equal(sim.offsets, base.offsets)


# --- delivery -----------------------------------------------------------------------

def test_dropouts_and_gaps_are_nan_and_not_emitted():
    d = DeliveryParams(dropout_probability=0.05, gap_rate_per_day=2.0, gap_mean_seconds=1800)
    sim = _sim(seed=5, delivery=d)
    plain = _sim(seed=5)
    miss = np.isnan(sim.values)
    assert 0.07 < miss.mean() < 0.2
    assert np.array_equal(sim.values[~miss], plain.values[~miss])          # what is sent is unchanged
    runs = [np.diff(np.flatnonzero(np.diff(np.r_[0, m.astype(int), 0]))) [::2] for m in miss]
    assert max(r.max() for r in runs if r.size) >= 20                       # real outages, not only dropouts
    emitted = sum(1 for _ in sim.readings())
    assert emitted == (~miss).sum()
    assert_emission_consistent(sim)
    assert {r["status"] for r in sim.labels()} == {"honest"}


def test_duplicates_are_identical_and_not_early():
    sim = _sim(seed=6, delivery=DeliveryParams(duplicate_probability=0.02, late_max_samples=3))
    readings = list(sim.readings())
    n = sim.values.size
    extra = len(readings) - n
    assert 0.01 * n < extra < 0.03 * n
    tick, row, col = sim.emission
    first = {}
    for i, key in enumerate(zip(row.tolist(), col.tolist())):
        if key in first:
            assert readings[i] == readings[first[key]] and i > first[key]
            assert col[i] <= tick[i] <= col[i] + 3
        else:
            first[key] = i
    assert_emission_consistent(sim)


def test_late_messages_come_after_later_samples_and_keep_their_ts():
    sim = _sim(seed=7, delivery=DeliveryParams(late_probability=0.05, late_max_samples=4))
    order = per_device_order(sim)
    late = 0
    for dev, cols in order.items():
        assert sorted(cols) == list(range(1440))                             # each sample once
        row = sim.device_ids.index(dev)
        ts = [sim.ts[row, c] for c in cols]
        for k in range(1, len(cols)):
            if cols[k] < cols[k - 1]:
                late += 1
                assert cols[k - 1] - cols[k] <= 4                              # bounded lateness
        assert ts == [sim.ts[row, c] for c in cols]
    assert late > 0.03 * sim.values.size
    # the message itself is unchanged, only its position
    tick, row, col = sim.emission
    lag = tick - col
    assert lag.max() == 4 and (lag >= 0).all() and 0.03 < (lag > 0).mean() < 0.07
    assert_emission_consistent(sim)


def test_ticks_carry_the_sending_order():
    d = DeliveryParams(late_probability=0.1, duplicate_probability=0.05, dropout_probability=0.05)
    sim = _sim(seed=8, delivery=d, samples=200)
    ticks = list(sim.ticks())
    assert [t.index for t in ticks] == list(range(200))
    flat = [(d, s) for t in ticks for d, s in zip(t.device.tolist(), t.sample.tolist())]
    tick, row, col = sim.emission
    assert flat == list(zip(row.tolist(), col.tolist()))
    for t in ticks:
        assert (t.sample <= t.index).all()
    late_only = _sim(seed=8, delivery=DeliveryParams(late_probability=0.2), samples=200)
    for t in list(late_only.ticks())[5:]:
        on_time = t.sample == t.index
        assert on_time[:on_time.sum()].all() and not on_time.all()             # on-time readings first


def test_clock_skew_is_a_small_constant_per_device():
    sim = _sim(seed=9, delivery=DeliveryParams(clock_skew_seconds=4.0))
    off = sim.ts - sim.times
    assert np.allclose(off, off[:, :1]) and np.abs(off).max() < 4.0 and np.ptp(off[:, 0]) > 2.0
    assert np.array_equal(sim.values, _sim(seed=9).values)
    with pytest.raises(ValueError, match="clock_skew"):
        Scenario(delivery=DeliveryParams(clock_skew_seconds=90.0))


def test_delivery_pieces_use_their_own_streams():
    a = _sim(seed=10, delivery=DeliveryParams(dropout_probability=0.05))
    b = _sim(seed=10, delivery=DeliveryParams(dropout_probability=0.05, late_probability=0.05,
                                               duplicate_probability=0.05, clock_skew_seconds=2.0))
    assert np.array_equal(np.isnan(a.values), np.isnan(b.values))


def test_realistic_readings_satisfy_product_schema():
    schema = pytest.importorskip("monitor.schema")
    sim = FleetSimulator(preset("zoo", samples=1000), seed=1)
    last_ts = {}
    for r in sim.readings():
        schema.Reading.model_validate(r)
        assert np.isfinite(r["value"])
        last_ts.setdefault(r["device_id"], []).append(r["ts"])
    assert any(np.any(np.diff(v) < 0) for v in last_ts.values())               # some arrive out of order


def test_same_seed_same_output_with_everything_on():
    for name in ("realistic", "zoo"):
        a, b = FleetSimulator(preset(name), seed=3), FleetSimulator(preset(name), seed=3)
        assert np.array_equal(a.values, b.values, equal_nan=True) and np.array_equal(a.ts, b.ts)
        assert a.labels() == b.labels() and list(a.readings()) == list(b.readings())
        c = FleetSimulator(preset(name), seed=4)
        assert not np.array_equal(a.values, c.values, equal_nan=True) and a.labels() != c.labels()
