"""The contract every per-device detector follows, run over all of them."""

import json

import numpy as np
import pytest

from monitor.detectors import (MeanShiftCusum, Observation, ReplayDetector, SlowShiftCusum, SpikeDetector, StuckDetector,
                               VarianceCusum)

DETECTORS = [MeanShiftCusum, VarianceCusum, SpikeDetector, StuckDetector, ReplayDetector, SlowShiftCusum]


def honest(n_dev, n_win, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_win, n_dev))
    value = 20 + rng.normal(size=(n_win, n_dev)) * 0.2
    consensus = 20 + np.cumsum(rng.normal(size=n_win)) * 0.05
    return z, value, consensus


def feed(det, z, value, consensus, devices=None, start=0, slack=None):
    n_win, n_dev = z.shape
    devices = np.arange(n_dev) if devices is None else devices
    det.resize(int(devices.max()) + 1)
    alarms = []
    for w in range(n_win):
        obs = Observation(devices, np.full(len(devices), start + w), value[w], np.full(len(devices), consensus[w]),
                          z[w], np.full(len(devices), 0.2), slack)
        out = det.update(obs)
        assert out.alarm.shape == out.score.shape == out.onset.shape == (len(devices),)
        assert out.alarm.dtype == bool
        alarms.append(out.alarm.copy())
    return np.array(alarms)


# how each detector's own anomaly looks: (z, value) transformation from a window on
ANOMALY = {
    MeanShiftCusum: lambda z, v, t: (z + 3.0 * (t >= 200), v),
    SlowShiftCusum: lambda z, v, t: (z + 0.03 * np.clip(t - 200, 0, None), v),  # a ramp
    VarianceCusum: lambda z, v, t: (np.where(t >= 200, z * 4.0, z), v),
    SpikeDetector: lambda z, v, t: (np.where(t == 200, 20.0, z), v),
    StuckDetector: lambda z, v, t: (z, np.where(t >= 200, v[200], v)),
    ReplayDetector: lambda z, v, t: (z, np.where(t >= 200, v[np.clip(t[:, 0] - 100, 0, None)], v)),
}


# false alarm episodes allowed in the 20,000 honest device-windows below: each detector's design rate
# (SlowShiftCusum: about one per 60,000 windows, see benchmarks/cusum_arl.py), with room for chance
QUIET_BUDGET = {SlowShiftCusum: 1}


@pytest.mark.parametrize("cls", DETECTORS)
def test_quiet_on_honest_streams(cls):
    z, value, consensus = honest(50, 400, seed=10)
    alarms = feed(cls(), z, value, consensus)
    episodes = int(alarms[0].sum() + (alarms[1:] & ~alarms[:-1]).sum())
    assert episodes <= QUIET_BUDGET.get(cls, 0)


@pytest.mark.parametrize("cls", DETECTORS)
def test_fires_on_its_anomaly_after_onset_only(cls):
    z, value, consensus = honest(5, 400, seed=11)
    consensus = consensus + np.linspace(0, 40, 400)  # the world moves (stuck needs that)
    t = np.arange(400)[:, None]
    z2, v2 = ANOMALY[cls](z, value, t)
    alarms = feed(cls(), z2, v2, consensus)
    assert not alarms[:200].any()
    assert alarms[200:260].any(axis=0).all()


@pytest.mark.parametrize("cls", DETECTORS)
def test_slack_only_takes_alarms_away(cls):
    """An uncertain baseline (the observation's slack) can delay or remove an alarm, never add one."""
    z, value, consensus = honest(8, 400, seed=15)
    t = np.arange(400)[:, None]
    z, value = ANOMALY[cls](z + 0.25, value, t)  # a small standing offset besides the anomaly
    consensus = consensus + np.linspace(0, 40, 400)
    plain = feed(cls(), z, value, consensus)
    slack = feed(cls(), z, value, consensus, slack=np.linspace(0.0, 0.5, 8))
    assert not (slack & ~plain).any()
    assert slack[:, 0].sum() == plain[:, 0].sum()  # no slack: no change


@pytest.mark.parametrize("cls", DETECTORS)
def test_state_is_json_and_restores_exactly(cls):
    z, value, consensus = honest(6, 300, seed=12)
    t = np.arange(300)[:, None]
    z, value = ANOMALY[cls](z, value, t)
    a = cls()
    feed(a, z[:250], value[:250], consensus[:250])
    state = json.loads(json.dumps(a.state_dict()))
    b = cls()
    b.load_state_dict(state)
    ra = feed(a, z[250:], value[250:], consensus[250:], start=250)
    rb = feed(b, z[250:], value[250:], consensus[250:], start=250)
    assert np.array_equal(ra, rb)


@pytest.mark.parametrize("cls", DETECTORS)
def test_devices_are_independent_and_sparse_indices_work(cls):
    z, value, consensus = honest(3, 300, seed=13)
    t = np.arange(300)[:, None]
    z2, v2 = ANOMALY[cls](z, value, t)
    z2[:, 1:], v2[:, 1:] = z[:, 1:], value[:, 1:]  # only device 0 misbehaves
    alarms = feed(cls(), z2, v2, consensus + np.linspace(0, 40, 300), devices=np.array([7, 100, 3]))
    assert alarms[:, 0].any() and not alarms[:, 1:].any()


@pytest.mark.parametrize("cls", DETECTORS)
def test_bounded_state_per_device(cls):
    det = cls()
    det.resize(10)
    assert 0 < det.state_bytes_per_device() <= 1024


@pytest.mark.parametrize("cls", DETECTORS)
def test_reset_forgets(cls):
    z, value, consensus = honest(2, 300, seed=14)
    t = np.arange(300)[:, None]
    z, value = ANOMALY[cls](z, value, t)
    det = cls()
    feed(det, z, value, consensus + np.linspace(0, 40, 300))
    det.reset(np.array([0, 1]))
    fresh = cls()
    fresh.resize(det._n)
    assert json.dumps(det.state_dict()) == json.dumps(fresh.state_dict())


def test_bad_parameters_fail():
    for make in (lambda: MeanShiftCusum(h=-1), lambda: MeanShiftCusum(h_off=20), lambda: VarianceCusum(ratio=1),
                 lambda: SpikeDetector(quiet=0), lambda: StuckDetector(min_run=1), lambda: ReplayDetector(k=1)):
        with pytest.raises(ValueError):
            make()
