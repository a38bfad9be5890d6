"""The camouflage test on its own: residual steps far smaller than the group's, window by window."""

import json

import numpy as np
import pytest

from monitor.mimic import MimicCusum

N = 20


def run(scale_of, windows=3000, seed=0, **kw):
    """N devices' residuals N(0, scale_of(w)**2) (``scale_of``: (N,) sigmas per window); the detector."""
    q = MimicCusum(**kw)
    q.resize(N)
    rng = np.random.default_rng(seed)
    devices = np.arange(N)[None, :]
    first = np.full(N, -1)
    for w in range(windows):
        q.observe(devices, (rng.normal(size=N) * scale_of(w))[None, :], np.array([w]))
        now = q.alarmed(np.arange(N))
        first[(first < 0) & now] = w
    return q, first


def test_honest_noise_raises_nothing():
    for seed in range(3):
        _, first = run(lambda w: np.ones(N), seed=seed)
        assert (first < 0).all()


def test_the_whole_group_calm_together_raises_nothing():
    """Steps are weighed against the group's in the same window: a calm night for every device is no sign."""
    _, first = run(lambda w: np.full(N, 0.05 if (w // 200) % 2 else 3.0))
    assert (first < 0).all()


def test_a_device_copying_its_group_is_found_within_a_few_dozen_windows():
    copier = np.arange(N) == 7
    q, first = run(lambda w: np.where(copier & (w >= 500), 0.1, 1.0), windows=1000)
    assert np.flatnonzero(first >= 0).tolist() == [7]
    assert 500 < first[7] < 560
    assert 480 <= int(q.onset(np.array([7]))[0]) <= first[7]


def test_too_few_devices_stepping_update_nothing():
    q = MimicCusum(min_group=5)
    q.resize(4)
    for w in range(200):
        q.observe(np.arange(4)[None, :], np.array([[1.0, -1.0, 0.5, 0.0 * w]]), np.array([w]))
    assert not q.alarmed(np.arange(4)).any()


def test_state_round_trips_through_json():
    copier = np.arange(N) == 3
    q, _ = run(lambda w: np.where(copier & (w >= 100), 0.1, 1.0), windows=300)
    other = MimicCusum()
    other.load_state_dict(json.loads(json.dumps(q.state_dict())))
    assert other.state_dict() == q.state_dict()
    assert other.alarmed(np.arange(N)).tolist() == q.alarmed(np.arange(N)).tolist()


def test_bad_parameters_fail_at_construction():
    with pytest.raises(ValueError):
        MimicCusum(r=1.5)
