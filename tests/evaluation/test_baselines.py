"""The baselines the harness scores beside the monitor (monitor/evaluation/baselines.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from monitor.evaluation.baselines import (
    CONSENSUS_BASELINES, DEVICE_BASELINES, AdwinDetector, AlwaysFire, HalfSpaceTreesDetector,
    IterativeFiltering, MeanZScore, MedianZScore, PageHinkleyDetector, RandomFire, TrimmedMean,
    iterative_filtering, trimmed_mean_rows,
)


def noise(T: int, D: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, D))


def colluders(f: int, offset: float, n: int = 20, T: int = 2000, seed: int = 0) -> np.ndarray:
    """n sensors of N(0, 1) around a true signal of 0; the first f share ``offset``."""
    x = noise(T, n, seed)
    x[:, :f] += offset
    return x


def with_gaps(x: np.ndarray, seed: int = 1, frac: float = 0.05) -> np.ndarray:
    """A copy with scattered NaN, one all-NaN row and one all-NaN column."""
    y = x.copy()
    y[np.random.default_rng(seed).random(y.shape) < frac] = np.nan
    y[len(y) // 2] = np.nan
    y[:, -1] = np.nan
    return y


# --------------------------------------------------------------------------- trivial baselines

def test_always_fire_alarms_exactly_on_readings():
    x = with_gaps(noise(100, 5))
    a = AlwaysFire().alarms(x)
    assert a.shape == x.shape and a.dtype == bool
    assert (a == ~np.isnan(x)).all()


def test_random_fire_rate_seed_and_nan():
    x = with_gaps(noise(20_000, 5))
    a = RandomFire(rate=0.05, seed=3).alarms(x)
    assert a.shape == x.shape and a.dtype == bool
    assert not a[np.isnan(x)].any()
    assert a[~np.isnan(x)].mean() == pytest.approx(0.05, abs=0.005)
    assert (a == RandomFire(rate=0.05, seed=3).alarms(x)).all()
    assert (a != RandomFire(rate=0.05, seed=4).alarms(x)).any()
    assert RandomFire().alarms(x)[~np.isnan(x)].mean() == pytest.approx(0.01, abs=0.003)


# --------------------------------------------------------------------------- z-score baselines

@pytest.mark.parametrize("cls", [MeanZScore, MedianZScore])
def test_zscore_rarely_fires_on_noise(cls):
    a = cls().alarms(noise(5000, 10))
    assert a.mean() < 2e-3     # |z| > 3.5 on N(0, 1): 4.7e-4


@pytest.mark.parametrize("cls", [MeanZScore, MedianZScore])
def test_zscore_fires_on_a_step(cls):
    x = noise(1500, 10, seed=2)
    x[1000:, 3] += 5.0
    a = cls().alarms(x)
    assert np.flatnonzero(a[1000:, 3])[0] < 3  # at once
    assert a[1000:1050, 3].mean() > 0.8        # and on (the misses are learned: it fades later)
    assert a[:1000].mean() < 2e-3
    assert np.delete(a, 3, axis=1)[1000:].mean() < 0.01


@pytest.mark.parametrize("cls", [MeanZScore, MedianZScore])
def test_zscore_respects_nan(cls):
    x = noise(1500, 10, seed=2)
    x[1000:, 3] += 5.0
    y = with_gaps(x)
    a = cls().alarms(y)
    assert a.shape == y.shape and not a[np.isnan(y)].any()
    ok = ~np.isnan(y[1000:1050, 3])
    assert a[1000:1050, 3][ok].mean() > 0.8
    assert a[:1000].mean() < 2e-3
    assert not cls().alarms(np.full((50, 3), np.nan)).any()


def test_zscore_warmup_and_constant_group():
    x = noise(200, 4)
    x[10, 0] += 50.0                            # inside the warmup: no alarm
    assert not MeanZScore(warmup=60).alarms(x)[:60].any()
    assert not MeanZScore().alarms(np.ones((200, 3))).any()      # zero spread: no alarm, no error
    assert not MedianZScore().alarms(noise(200, 1)).any()        # one device: residual is 0


# --------------------------------------------------------------------------- River baselines

@pytest.mark.parametrize("cls", [AdwinDetector, PageHinkleyDetector])
def test_river_drift_fires_after_a_step_and_skips_nan(cls):
    x = noise(2000, 2, seed=5)
    x[1000:, 0] += 3.0
    x[np.random.default_rng(6).random(x.shape) < 0.1] = np.nan
    x[:, 1] = np.nan
    a = cls().alarms(x)
    assert a.shape == x.shape and not a[np.isnan(x)].any()
    assert not a[:, 1].any()
    hits = np.flatnonzero(a[1000:, 0])
    assert len(hits) and hits[0] < 200
    if cls is AdwinDetector:
        assert not a[:1000].any()


def test_river_drift_alarms_are_single_samples():
    x = noise(3000, 1, seed=7)
    x[1000:] += 3.0
    a = PageHinkleyDetector().alarms(x)[:, 0]
    assert not (a[1:] & a[:-1]).any()


def test_half_space_trees_shape_nan_and_stride():
    x = noise(700, 2, seed=8)
    x[500:, 0] += 10.0
    x[np.random.default_rng(9).random(x.shape) < 0.05] = np.nan
    a = HalfSpaceTreesDetector(warmup=250).alarms(x)
    assert a.shape == x.shape and a.dtype == bool and not a[np.isnan(x)].any()
    assert not a[:250].any()
    assert a[500:520, 0].mean() > 0.5          # the onset of a gross step
    b = HalfSpaceTreesDetector(warmup=100, stride=3).alarms(x)
    assert b.shape == x.shape
    assert not HalfSpaceTreesDetector().alarms(np.full((30, 2), np.nan)).any()
    assert not HalfSpaceTreesDetector(warmup=10).alarms(np.ones((30, 1))).any()


# --------------------------------------------------------------------------- consensus baselines

def bias(name: str, x: np.ndarray) -> float:
    return float(np.mean(CONSENSUS_BASELINES[name](x)))


def test_consensus_bias_six_colluders_at_10_sigma():
    x = colluders(6, 10.0)
    b = {name: bias(name, x) for name in CONSENSUS_BASELINES}
    # ANCHORS: mean 3.0σ, median 0.55σ, 20% trimmed 1.88σ, IF 0.045σ
    assert b["mean"] == pytest.approx(3.0, abs=0.05)
    assert b["median"] == pytest.approx(0.55, abs=0.08)
    assert b["trimmed_mean_20"] == pytest.approx(1.88, abs=0.08)
    assert 0.0 < b["iterative_filtering"] < 0.1
    assert b["mean"] > b["trimmed_mean_20"] > b["median"] > b["iterative_filtering"]


def test_consensus_bias_eight_colluders_at_1_sigma():
    x = colluders(8, 1.0)
    b = {name: bias(name, x) for name in CONSENSUS_BASELINES}
    # ANCHORS: mean 0.40σ, median 0.39σ, trimmed 0.39σ, IF 0.34σ: in-spread colluders move them all
    for name in ("mean", "median", "trimmed_mean_20"):
        assert b[name] == pytest.approx(0.39, abs=0.05)
    assert b["iterative_filtering"] == pytest.approx(0.34, abs=0.04)
    assert b["iterative_filtering"] < min(b["mean"], b["median"], b["trimmed_mean_20"])


@pytest.mark.parametrize("name", list(CONSENSUS_BASELINES))
def test_consensus_handles_nan(name):
    c = CONSENSUS_BASELINES[name]
    x = colluders(3, 5.0, n=10, T=300)
    y = with_gaps(x)
    e = c(y)
    assert e.shape == (len(y),)
    assert (np.isnan(e) == np.isnan(y).all(axis=1)).all()       # NaN exactly where no one reported
    assert np.allclose(c(x[:, :-1]), c(np.column_stack([x[:, :-1], np.full(len(x), np.nan)])))
    assert np.isnan(c(np.full((5, 3), np.nan))).all()
    assert c(np.empty((0, 4))).shape == (0,)


def test_trimmed_mean_convention_is_scipy_trim_mean():
    x = noise(50, 20)
    assert np.allclose(trimmed_mean_rows(x, 0.2), stats.trim_mean(x, 0.2, axis=1))
    assert np.allclose(trimmed_mean_rows(x[:, :7], 0.2), stats.trim_mean(x[:, :7], 0.2, axis=1))
    assert TrimmedMean(0.1).name == "trimmed_mean_10"


def test_iterative_filtering_weights_and_windows():
    x = colluders(6, 10.0, T=240)
    _, w = iterative_filtering(x.reshape(4, 60, 20))
    assert np.allclose(w.sum(axis=1), 1.0)
    assert (w[:, :6].max(axis=1) < 0.2 * w[:, 6:].min(axis=1)).all()
    for kw in ({"window": 50}, {"window": 60, "step": 7}, {"window": 1000}, {"discriminant": "exponential"}):
        e = IterativeFiltering(**kw)(x)
        assert e.shape == (240,) and np.isfinite(e).all()
    assert abs(np.mean(IterativeFiltering(window=60, step=7)(x))) < 0.2
    with pytest.raises(ValueError):
        IterativeFiltering(discriminant="affine")(x)


def test_registries_run_on_a_small_group():
    x = with_gaps(colluders(2, 3.0, n=5, T=300))
    for name, factory in DEVICE_BASELINES.items():
        det = factory()
        assert det.name == name
        a = det.alarms(x)
        assert a.shape == x.shape and a.dtype == bool and not a[np.isnan(x)].any()
    for name, c in CONSENSUS_BASELINES.items():
        assert c.name == name and c.estimate(x).shape == (300,)
