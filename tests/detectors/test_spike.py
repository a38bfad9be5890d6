"""Spikes: one huge residual, or smaller ones in pairs; a device that became noisy is not spiking."""

import numpy as np

from monitor.detectors import Observation, SpikeDetector


def run(det: SpikeDetector, z: np.ndarray) -> np.ndarray:
    """Feed (devices, windows) residuals; the alarm of every device after each window."""
    n, T = z.shape
    det.resize(n)
    devices = np.arange(n)
    out = np.zeros((n, T), bool)
    for t in range(T):
        out[:, t] = det.update(Observation(devices, np.full(n, t), np.zeros(n), np.zeros(n), z[:, t], np.ones(n))).alarm
    return out


def test_pairs_of_smaller_spikes_alarm_and_honest_noise_stays_quiet():
    rng = np.random.default_rng(11)
    n, T = 200, 2000
    z = rng.standard_normal((n, T))
    liar = slice(0, 20)
    hit = (rng.random((20, T)) < 0.03) & (np.arange(T) >= 1000)
    z[liar] += hit * rng.choice([-6.0, 6.0], size=(20, T))
    alarm = run(SpikeDetector(), z)
    assert not alarm[20:].any()                      # 180 honest devices x 2,000 windows
    assert not alarm[liar, :1000].any()
    assert alarm[liar, 1000:].any(axis=1).mean() >= 0.9  # 6-sigma spikes are under the single-spike threshold


def test_a_noisy_device_is_not_read_as_spiking():
    """Noise grown 2.5x (the variance detector's case): the pair rule adds next to nothing to what
    single huge residuals already raise."""
    rng = np.random.default_rng(12)
    z = 2.5 * rng.standard_normal((50, 3000))
    with_pairs = run(SpikeDetector(), z).mean()
    without = run(SpikeDetector(pair_windows=1), z).mean()  # two isolated spikes cannot be one window apart
    assert with_pairs - without < 0.002


def test_onset_is_the_first_spike_of_the_pair():
    det = SpikeDetector(threshold=8, quiet=3)
    z = np.zeros((1, 30))
    z[0, 5] = z[0, 20] = 6.0
    run(det, z)
    out = det.update(Observation(np.array([0]), np.array([30]), np.zeros(1), np.zeros(1), np.zeros(1), np.ones(1)))
    assert out.onset[0] == 5
