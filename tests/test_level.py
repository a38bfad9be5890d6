"""Offset snapshots, and the level a nominated set's pull taught its group put back."""

import json

import numpy as np
import pytest

from monitor.config import DetectionSettings
from monitor.evaluation.runner import run_monitor
from monitor.level import OffsetSnapshots
from simulators import FleetSimulator, sweep_scenarios, to_eval_data


def snapshots(every=10):
    s = OffsetSnapshots(every=every)
    s.resize(n_devices=6, n_groups=2)
    return s


def take(s, windows, offsets):
    """Snapshot both groups (devices 0-2 and 3-5) at these windows (a pair), all warm."""
    s.take(np.array([0, 1]), np.array(windows), np.array([[0, 1, 2], [3, 4, 5]]),
           np.asarray(offsets, float).reshape(2, 3), np.ones((2, 3), bool))


def test_snapshots_are_due_every_so_many_windows_per_group():
    s = snapshots()
    assert s.due(np.array([0, 1]), np.array([5, 5])).tolist() == [True, True]  # none yet
    take(s, [5, 5], np.zeros(6))
    assert s.due(np.array([0, 1]), np.array([14, 15])).tolist() == [False, True]


def test_the_snapshot_from_before_the_onset_measures_the_learned_shift():
    s = snapshots()
    take(s, [0, 0], [0, 1, 2, 3, 4, 5])
    take(s, [10, 10], [-1, 0, 1, 3, 4, 5])  # group 0 learned -1 between the two
    assert s.slot(0, since=12) == 0 and s.slot(0, since=5) == 1
    now = np.array([-1.0, 0.0, 1.0])
    assert s.learned_shift(0, 0, np.arange(3), now) == 0.0
    assert s.learned_shift(0, 1, np.arange(3), now) == -1.0


def test_common_moves_are_not_learning():
    """The pin's and a restore's moves of every offset of a group are kept per group, so the change
    since a snapshot counts only what was learned."""
    s = snapshots()
    take(s, [0, 0], np.zeros(6))
    s.shift(np.array([0]), np.array([0.25]))
    assert s.learned_shift(0, 0, np.arange(3), np.full(3, 0.25)) == 0.0
    assert s.learned_shift(1, 0, np.arange(3, 6), np.full(3, 0.25)) == 0.25


def test_set_members_keep_their_snapshot_from_before_the_onset():
    s = snapshots()
    take(s, [0, 0], [0, 0, 0, 0, 0, 0])
    take(s, [10, 10], [0.5, 0, 0, 0, 0, 0])   # device 0 learned part of its lie after the onset
    s.hold(np.array([0]), 1)
    s.take(np.array([0]), np.array([20]), np.array([[0, 1, 2]]), np.full((1, 3), 0.9), np.ones((1, 3), bool),
           held=np.array([[True, False, False]]))
    held = np.array([True, False])
    assert s.before(np.array([0, 1]), np.array([0, 0]), np.array([0.9, 0.9]), held).tolist() == [0.0, 0.9]


def test_not_warm_is_not_compared_and_state_round_trips():
    s = snapshots()
    s.take(np.array([0]), np.array([0]), np.array([[0, 1, 2]]), np.zeros((1, 3)), np.array([[True, False, False]]))
    assert s.learned_shift(0, 0, np.arange(3), np.ones(3)) == 0.0  # one device only: no call
    s.shift(np.array([1]), np.array([0.5]))
    r = OffsetSnapshots(every=10)
    r.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert np.array_equal(r._snap, s._snap, equal_nan=True) and r._when.tolist() == s._when.tolist()
    assert r._gauge.tolist() == s._gauge.tolist()
    s.reset(np.array([0]))
    assert np.isnan(s._snap[0]).all()
    with pytest.raises(ValueError):
        OffsetSnapshots(every=0)


def _honest_offsets_against_twin(seed, settings):
    """Per group of one 30%, 0.5 sigma sweep cell: the honest devices' learned offsets minus the clean
    twin's at the end (sigmas), and the monitor's alerts."""
    sim = FleetSimulator(sweep_scenarios(fractions=(0.3,), offsets=(0.5,))[0], seed=seed)
    data, clean = to_eval_data(sim), to_eval_data(sim.clean_twin())
    alerts, _, pipe, *_ = run_monitor(data, settings)
    _, _, twin, *_ = run_monitor(clean, settings)
    liars = {lab["device_id"] for lab in data.labels if lab["status"] != "honest"}
    out = []
    for g, group in enumerate(data.groups):
        ids = [d for d in np.asarray(data.device_ids)[data.device_group == g] if d not in liars]
        sigma = float(np.median(data.sigma[data.device_group == g]))
        off = [p.devices.offset(p.registry.index([group] * len(ids), ids)) * p._unit(np.array([p.registry.group(group)]))[0]
               for p in (pipe, twin)]
        out.append(float(np.mean(off[0] - off[1])) / sigma)
    return np.array(out), alerts


@pytest.mark.parametrize("seed", [7, 8])
def test_a_nominated_sets_pull_is_taken_back_out_of_the_honest_offsets(seed):
    """While an in-spread set is in the consensus the honest offsets learn its pull; without the
    restore they keep it for good (the level no residual shows). With it, the honest offsets end
    much nearer the clean twin's, and since every offset of the group moves together, no alert
    changes. (Seeds other than the scoreboard's sweep seed.)"""
    kept, off_alerts = _honest_offsets_against_twin(seed, DetectionSettings(offset_restore_windows=0))
    restored, on_alerts = _honest_offsets_against_twin(seed, DetectionSettings())
    assert kept.mean() < -0.02  # the pull, learned
    assert np.abs(restored).mean() < 0.6 * np.abs(kept).mean()
    key = lambda a: (a.alert_id, a.state, tuple(a.devices), a.onset_ts, a.ts)  # noqa: E731
    assert sorted(map(key, on_alerts)) == sorted(map(key, off_alerts))


def test_the_collusion_alert_says_how_far_the_level_was_moved_back():
    """Operators see the restore: a set's alert carries the pull taken back out at its nomination,
    against the set's direction (value units), 0 where nothing was moved."""
    sim = FleetSimulator(sweep_scenarios(fractions=(0.3,), offsets=(0.5,), groups=2, samples=700)[0], seed=9)
    alerts, *_ = run_monitor(to_eval_data(sim), DetectionSettings())
    sets = [a for a in alerts if a.kind == "collusion" and a.state == "firing"]
    assert sets
    moved = [a.evidence["level_restored"] * (1 if a.evidence["direction"] == "high" else -1) for a in sets]
    assert all(m <= 0 for m in moved) and any(m < 0 for m in moved)
