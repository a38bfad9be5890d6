"""ReplayDetector: short fingerprints for ragged streams, and a guard for quantised sensors."""

import numpy as np

from monitor.detectors.base import Observation
from monitor.detectors.replay import ReplayDetector


def feed(det, values, windows):
    """One device; returns the window of its first replay alarm (None if none)."""
    det.resize(1)
    for w, v in zip(windows, values):
        if det.update(Observation(np.array([0]), np.array([w]), np.array([v]), np.zeros(1), np.zeros(1),
                                  np.ones(1))).alarm[0]:
            return int(w)
    return None


def ragged(n, rng, missing=0.25):
    """Windows 0..n-1 with about ``missing`` of them dropped at random (readings falling into the
    neighbouring window)."""
    return np.flatnonzero(rng.random(n) >= missing)


def test_a_replay_is_seen_within_a_few_windows_of_a_ragged_stream():
    """A replay of the stretch 60 windows back, whose missing windows fall elsewhere than they did
    the first time: pairs still match where 4-value sequences rarely do."""
    found = {2: [], 4: []}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        x = 20 + rng.normal(size=400)
        x[300:] = x[240:340]                       # from window 300: what was sent 60 windows earlier
        w = ragged(400, rng)
        for k in found:
            at = feed(ReplayDetector(k=k), x[w], w)
            found[k].append(None if at is None else at - 300)
    assert all(d is not None and 0 <= d <= 30 for d in found[2]), found
    assert np.median([d if d is not None else 100 for d in found[2]]) < np.median(
        [d if d is not None else 100 for d in found[4]])


def test_a_quantised_sensor_is_never_called_a_replay():
    """Whole-number readings of a slowly moving signal: every short sequence has been seen, so exact
    repeats say nothing and the detector stands aside (its chance share is far above max_chance)."""
    rng = np.random.default_rng(7)
    t = np.arange(6000)
    x = np.round(20 + 3 * np.sin(t / 300) + rng.normal(size=len(t)) * 0.6)
    det = ReplayDetector()
    assert feed(det, x, t) is None
    assert det._chance[0] > 10 * det.max_chance
    assert feed(ReplayDetector(max_chance=1.0), x, t) is not None  # without the guard: a false replay


def test_a_noisy_sensor_has_no_chance_repeats():
    rng = np.random.default_rng(8)
    det = ReplayDetector()
    assert feed(det, 20 + rng.normal(size=3000), np.arange(3000)) is None
    assert det._chance[0] == 0.0
