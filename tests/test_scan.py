"""The subset scan: its evidence, the value-unit weighting and the bound used to skip rows."""

import numpy as np
import pytest

from monitor.scan import evidence_bounds, subset_scan


def rows(seed, R=300, C=20):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(R, C))
    u[rng.random((R, C)) < 0.1] = np.nan                       # absent devices
    shifted = rng.random(R) < 0.3
    k = rng.integers(2, 8, R)
    for r in np.flatnonzero(shifted):
        u[r, : k[r]] += rng.uniform(2, 9)
    scale = rng.uniform(0.5, 1.5, (R, C))
    return u, scale


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_bound_is_never_below_the_evidence(seed, weighted):
    u, scale = rows(seed)
    s = scale if weighted else None
    high, low = evidence_bounds(u, 2, 0.5, scale=s)
    assert np.all(high >= subset_scan(u, 2, 0.5, scale=s).evidence - 1e-9)
    assert np.all(low >= subset_scan(-u, 2, 0.5, scale=s).evidence - 1e-9)


def test_equal_scales_change_nothing():
    u, _ = rows(3)
    plain, ones = subset_scan(u, 2, 0.5), subset_scan(u, 2, 0.5, scale=np.ones_like(u))
    assert np.array_equal(plain.k, ones.k)
    assert np.allclose(plain.evidence, ones.evidence, equal_nan=True)
    assert np.allclose(plain.shift, ones.shift)


def test_one_value_shift_names_more_of_the_set():
    """Five devices of 20 share one shift in value units; two are quiet, two noisy. In standard errors
    the quiet ones stand out far more, and the cap on a set's spread keeps the plain scan to them;
    in value units the weighted scan names more of the five, and no honest device more often."""
    R = 500
    rng = np.random.default_rng(4)
    scale = np.c_[np.tile([0.5, 0.6, 1.4, 1.5, 1.0], (R, 1)), rng.uniform(0.5, 1.5, (R, 15))]
    truth = set(range(5))
    for shift in (4.0, 6.0):
        u = (rng.normal(size=(R, 20)) * scale + np.c_[np.full((R, 5), shift), np.zeros((R, 15))]) / scale
        weighted, plain = subset_scan(u, 2, 0.5, scale=scale), subset_scan(u, 2, 0.5)
        named = lambda res: np.mean([len(truth & set(res.members(i).tolist())) for i in range(R)])  # noqa: E731
        wrong = lambda res: np.mean([len(set(res.members(i).tolist()) - truth) for i in range(R)])  # noqa: E731
        assert named(weighted) > named(plain) + 1.0
        assert wrong(weighted) <= wrong(plain) + 0.02


def test_honest_rows_rarely_pass_the_threshold():
    rng = np.random.default_rng(5)
    u = rng.normal(size=(20000, 20))
    scale = rng.uniform(0.5, 1.5, u.shape)
    for s in (None, scale):
        ev = np.maximum(subset_scan(u, 2, 0.5, scale=s).evidence, subset_scan(-u, 2, 0.5, scale=s).evidence)
        assert (ev >= 10).mean() < 2e-4      # the union bound: at most about e^-10 per test and side


@pytest.mark.parametrize("weighted", [False, True])
def test_bound_rules_out_honest_rows(weighted):
    """The bound is what lets a round skip the scan: on honest rows it should rarely reach the threshold."""
    rng = np.random.default_rng(5)
    u = rng.normal(size=(2000, 20))
    s = rng.uniform(0.5, 1.5, u.shape) if weighted else None
    high, low = evidence_bounds(u, 2, 0.5, scale=s)
    assert (np.maximum(high, low) >= 10).mean() < 0.01
