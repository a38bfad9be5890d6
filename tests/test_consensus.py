import numpy as np

from monitor.consensus import nanmedian_rows, robust_consensus


def test_median_rows_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 9))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[0] = np.nan
    med, n = nanmedian_rows(x)
    assert np.isnan(med[0]) and n[0] == 0
    np.testing.assert_allclose(med[1:], np.nanmedian(x[1:], axis=1))


def test_gross_liars_are_rejected():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 20))
    x[:, :6] += 10.0  # 30% colluders, 10 sigma
    c = robust_consensus(x)
    assert abs(np.mean(c.value)) < 0.03  # the honest mean is 0 (the median alone: 0.55)
    assert abs(np.mean(c.median)) > 0.4
    assert (~c.inlier[:, :6]).mean() > 0.99


def test_uncertain_when_too_few_and_leave_one_out():
    x = np.array([[1.0, 2.0, 3.0, np.nan], [1.0, np.nan, np.nan, np.nan]])
    c = robust_consensus(x, min_devices=2)
    assert c.uncertain.tolist() == [False, True] and np.isnan(c.value[1])
    loo = c.leave_one_out(x)
    np.testing.assert_allclose(loo[0, :3], [2.5, 2.0, 1.5])
    assert loo[0, 3] == c.value[0]


def test_single_liar_moves_the_consensus_little():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4000, 10))
    x[:, 0] += 1e6
    assert abs(np.mean(robust_consensus(x).value)) < 0.02
