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


def fleet_feed(det, x, present, ask, until=None):
    """Devices = rows of ``x``, window by window (``present[i, w]``: device i reports in window w);
    after each window ``ask(w)`` may look at the detector. Returns nothing."""
    det.resize(len(x))
    for w in range(x.shape[1] if until is None else until):
        d = np.flatnonzero(present[:, w])
        z = np.zeros(len(d))
        det.update(Observation(d, np.full(len(d), w), x[d, w], z, z, np.ones(len(d))))
        ask(w)


def test_a_copy_of_another_device_is_traced_to_it():
    """Device 5 re-sends device 2's readings from window 300, live or 30 windows late, each device
    missing a quarter of its windows at random: device 2 is named within 30 windows, and no
    honest device is ever said to copy anyone (a late copy is not mistaken the other way round)."""
    everyone = np.arange(6)
    for seed in range(4):
        for lag in (0, 30):
            rng = np.random.default_rng(seed)
            x = 20 + rng.normal(size=(6, 420))
            x[5, 300:] = x[2, 300 - lag:420 - lag]
            present = rng.random(x.shape) >= 0.25
            det, named, wrong = ReplayDetector(), [], []

            def ask(w):
                if w >= 300 and not named and det.source(5, everyone)[0] == 2:
                    named.append(w)
                honest = [0, 1, 3, 4] + ([2] if lag else [])  # a live mirror's source shares as much
                wrong.extend((w, d) for d in honest if det.source(d, everyone)[0] >= 0)

            fleet_feed(det, x, present, ask)
            assert named and named[0] - 300 <= 30, (seed, lag, named)
            assert not wrong, (seed, lag, wrong[:3])


def test_quantised_peers_are_never_called_copies():
    """Whole-number readings of one slowly moving signal: the devices share many pairs with each
    other by chance (checked below), yet none is said to copy another."""
    rng = np.random.default_rng(3)
    t = np.arange(3000)
    x = np.round(20 + 3 * np.sin(t / 300) + rng.normal(size=(6, len(t))) * 0.6)
    det, calls, most = ReplayDetector(), [], []

    def ask(w):
        if w % 50 == 0 and w >= det.capacity:
            calls.extend(d for d in range(6) if det.source(d, np.arange(6))[0] >= 0)
            mine = det._ring[0][det._ring[0] != 0]
            most.append(max(int(np.isin(mine, det._ring[p]).sum()) for p in range(1, 6)))

    fleet_feed(det, x, np.ones(x.shape, bool), ask)
    assert not calls
    assert min(most) >= 3 * det.min_matches  # what a chance-blind comparison would call a copy


def test_the_ring_comparison_also_sees_a_replay_of_the_device_s_own_past():
    """``source`` returns the device itself for a ragged replay of its own past (what a shift alarm
    asks, which may come before three pairs in a row have matched), never for an honest stream."""
    for seed in range(6):
        rng = np.random.default_rng(seed)
        x = 20 + rng.normal(size=(2, 400))
        x[0, 300:] = x[0, 240:340]
        present = rng.random(x.shape) >= 0.25
        det, seen = ReplayDetector(), {0: [], 1: []}
        fleet_feed(det, x, present, lambda w: [seen[d].append(w) for d in (0, 1)
                                               if det.source(d, np.array([0, 1]))[0] == d])
        assert seen[0] and 300 <= seen[0][0] <= 340 and not seen[1], (seed, seen[0][:1], seen[1][:1])
