"""The subset scan: its evidence, the value-unit weighting and the bound used to skip rows."""

import numpy as np
import pytest
from scipy.stats import norm

from monitor.scan import evidence_bounds, log_choose, set_penalty, set_statistics, subset_scan
from monitor.scan_penalty import PENALTY


def rows(seed, R=300, C=20, absent=0.1):
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(R, C))
    u[rng.random((R, C)) < absent] = np.nan                    # absent devices
    u[rng.random((R, C)) < 0.05] = 0.0                         # tied means (reset to zero after a set closes)
    shifted = rng.random(R) < 0.3
    k = rng.integers(2, 8, R)
    for r in np.flatnonzero(shifted):
        u[r, : k[r]] += rng.uniform(2, 9)
    scale = rng.uniform(0.5, 1.5, (R, C))
    return u, scale


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("penalty", ["calibrated", "union"])
@pytest.mark.parametrize("absent", [0.0, 0.1])
def test_bound_is_never_below_the_evidence(seed, weighted, penalty, absent):
    u, scale = rows(seed, absent=absent)
    s = scale if weighted else None
    high, low = evidence_bounds(u, 2, 0.5, scale=s, penalty=penalty)
    assert np.all(high >= subset_scan(u, 2, 0.5, scale=s, penalty=penalty).evidence - 1e-9)
    assert np.all(low >= subset_scan(-u, 2, 0.5, scale=s, penalty=penalty).evidence - 1e-9)


def test_equal_scales_change_nothing():
    u, _ = rows(3)
    plain, ones = subset_scan(u, 2, 0.5), subset_scan(u, 2, 0.5, scale=np.ones_like(u))
    assert np.array_equal(plain.k, ones.k)
    assert np.allclose(plain.evidence, ones.evidence, equal_nan=True)
    assert np.allclose(plain.shift, ones.shift)


def test_one_value_shift_names_more_of_the_set():
    """Five devices of 20 share one shift in value units; two are quiet, two noisy. In standard errors
    the quiet ones stand out far more, and the cap on a set's spread keeps the plain scan to them;
    in value units the weighted scan names more of the five. A scan that pays about as much for a set
    of six as for one of five sometimes takes one honest device along (the hold before an alert
    measures each member's shift); with the union bound's penalty it hardly ever does."""
    R = 500
    rng = np.random.default_rng(4)
    scale = np.c_[np.tile([0.5, 0.6, 1.4, 1.5, 1.0], (R, 1)), rng.uniform(0.5, 1.5, (R, 15))]
    truth = set(range(5))
    for shift in (4.0, 6.0):
        u = (rng.normal(size=(R, 20)) * scale + np.c_[np.full((R, 5), shift), np.zeros((R, 15))]) / scale
        named = lambda res: np.mean([len(truth & set(res.members(i).tolist())) for i in range(R)])  # noqa: E731
        wrong = lambda res: np.mean([len(set(res.members(i).tolist()) - truth) for i in range(R)])  # noqa: E731
        for penalty, extra in (("calibrated", 0.1), ("union", 0.02)):
            weighted = subset_scan(u, 2, 0.5, scale=scale, penalty=penalty)
            plain = subset_scan(u, 2, 0.5, penalty=penalty)
            assert named(weighted) > named(plain) + 1.0
            assert wrong(weighted) <= wrong(plain) + extra


def test_honest_rows_pass_a_threshold_about_as_often_as_it_says():
    """Evidence c is passed by about e^-c of honest rows (both sides, every set size) with the
    calibrated penalty; the union bound's is many times stricter than it says."""
    rng = np.random.default_rng(5)
    u = rng.normal(size=(20000, 20))
    scale = rng.uniform(0.5, 1.5, u.shape)
    for s in (None, scale):
        def rate(c, penalty):
            ev = np.maximum(subset_scan(u, 2, 0.5, scale=s, penalty=penalty).evidence,
                            subset_scan(-u, 2, 0.5, scale=s, penalty=penalty).evidence)
            return (ev >= c).mean()
        for c in (4.0, 6.0):
            assert np.exp(-c) / 4 < rate(c, "calibrated") < 1.3 * np.exp(-c)
            assert rate(c, "union") < np.exp(-c) / 10


def test_calibrated_penalty_agrees_with_a_fresh_measurement():
    """The table (measured at a tail of 1e-4, seed n) against 400,000 other groups of 12 at a tail of
    5e-4: ln A barely depends on how far out it is measured."""
    n, samples = 12, 400_000
    rng = np.random.default_rng(12345)
    t = np.concatenate([set_statistics(rng.normal(size=(50_000, n))).t for _ in range(samples // 50_000)])
    q = 200 / samples
    for k in range(1, n // 2):
        fresh = np.log(q / norm.sf(np.quantile(t[:, k - 1], 1 - q)))
        assert abs(fresh - PENALTY[n][k - 1]) < 0.35, k


def test_penalty_lies_between_zero_and_the_union_bound():
    n = np.arange(2, 200)
    for k in range(1, 60):
        ks = np.array([k])
        cal, union = set_penalty(n, ks)[:, 0], set_penalty(n, ks, "union")[:, 0]
        ok = k <= n // 2
        assert np.all(cal[ok] >= 0) and np.all(cal[ok] <= union[ok] + 1e-12)
        assert np.allclose(union[ok], log_choose(n[ok], np.full(ok.sum(), k)))
    with pytest.raises(ValueError, match="penalty"):
        set_penalty(n, np.array([2]), "bonferroni")


@pytest.mark.parametrize("weighted", [False, True])
def test_bound_rules_out_honest_rows(weighted):
    """The bound is what lets a round skip the scan: on honest rows it should rarely reach the threshold."""
    rng = np.random.default_rng(5)
    u = rng.normal(size=(2000, 20))
    s = rng.uniform(0.5, 1.5, u.shape) if weighted else None
    high, low = evidence_bounds(u, 2, 0.5, scale=s)
    assert (np.maximum(high, low) >= 14).mean() < 0.001


def test_absent_devices_raise_no_numpy_warnings():
    """Rows with absent devices, even a row with none present or none with a noise level (NaN scale),
    are masked, not warned about: the service's log stays clean."""
    import warnings

    u, scale = rows(6, absent=0.3)
    u[0] = np.nan
    scale[1] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for s in (None, scale):
            high, low = evidence_bounds(u, 2, 0.5, scale=s)
            subset_scan(u, 2, 0.5, scale=s)
    assert np.isfinite(high).any() and np.isfinite(low).any()
