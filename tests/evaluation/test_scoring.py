"""Scoring functions on hand-made cases whose right answers are known."""

import math

import numpy as np
import pytest

from monitor.evaluation.scoring import (Interval, pool_collusion, pool_device_scores, runs_to_intervals, score_collusion,
                                        score_device_events, truth_from_labels)

W = 60.0


def label(dev, status="attack", type_="bias", start=600.0, end=None, group="g", cset=None, **params):
    return {"device_id": dev, "group": group, "status": status, "type": type_, "start_ts": start, "end_ts": end,
            "collusion_set": cset, "params": params}


def honest(dev, group="g"):
    return {"device_id": dev, "group": group, "status": "honest", "type": None, "start_ts": None, "end_ts": None,
            "collusion_set": None, "params": {}}


def score(alarms, labels, t0=0.0, t_end=86400.0, grace=0.0):
    t = truth_from_labels(labels, t0, t_end)
    return score_device_events(alarms, t.attacks, t.faults, t.honest_days, W, grace, t.events, t.event_days,
                               t.fault_days)


def test_firing_exactly_at_onset_scores_delay_zero():
    s = score([Interval("a", "g", 600.0, 900.0)], [label("a"), honest("b")])
    assert (s["recall"], s["precision"], s["delay_median_s"], s["delay_median_samples"]) == (1.0, 1.0, 0.0, 0.0)


def test_delay_in_samples_and_seconds():
    s = score([Interval("a", "g", 600.0 + 5 * W, math.inf)], [label("a")])
    assert s["delay_median_s"] == 300.0 and s["delay_median_samples"] == 5.0


def test_always_fire_scores_its_known_precision():
    """4 devices, 1 attacked: one alarm run per device over the whole day -> precision 1/4, recall 1."""
    T = 1440
    labels = [label("d0")] + [honest(f"d{i}") for i in range(1, 4)]
    alarms = runs_to_intervals(np.ones((T, 4), bool), np.arange(T) * W, [f"d{i}" for i in range(4)], "g", W)
    s = score(alarms, labels)
    assert s["precision"] == pytest.approx(0.25) and s["recall"] == 1.0 and s["delay_median_s"] == 0.0
    assert s["fa_per_device_day_honest"] == pytest.approx(1.0)  # one run per honest device-day


def test_alarm_before_and_after_an_attack_is_false_and_misses_count():
    labels = [label("a", start=1000.0, end=2000.0), label("b", start=1000.0), honest("c")]
    alarms = [Interval("a", "g", 100.0, 200.0), Interval("a", "g", 2500.0, 2600.0), Interval("c", "g", 0.0, 60.0)]
    s = score(alarms, labels)
    assert s["recall"] == 0.0 and s["precision"] == 0.0 and s["false_alarms"] == 3
    s = score(alarms, labels, grace=600.0)  # a grace after the attack's end makes the late alarm count
    assert s["detected"] == 1 and s["true_alarms"] == 1


def test_faults_are_neither_true_nor_false_and_benign_events_are_counted_apart():
    labels = [label("a", status="fault", type_="stuck", start=0.0, end=43200.0),
              label("b", status="benign_event", type_="sun", start=0.0, end=43200.0, event_id="e1"),
              honest("c")]
    alarms = [Interval("a", "g", 100.0, 200.0), Interval("b", "g", 100.0, 200.0), Interval("c", "g", 100.0, 200.0)]
    s = score(alarms, labels)
    assert s["true_alarms"] == 0 and s["false_alarms"] == 2
    assert s["fa_per_device_day_fault"] == pytest.approx(2.0)   # 1 alarm in half a day of fault
    assert s["fa_per_device_day_event"] == pytest.approx(2.0)
    assert s["fa_per_device_day_honest"] == pytest.approx(0.5)  # b and c are honest devices: 2 device-days


def test_collusion_sets_and_benign_events():
    sets = [Interval("", "g", 0, 100, members=("a", "b", "c", "d"))]
    events = [Interval("", "g", 200, 300, members=("x", "y"))]
    alarms = [Interval("", "g", 10, 50, members=("a", "b", "c")),      # J = 0.75: found
              Interval("", "g", 250, 260, members=("x", "y")),         # a benign event named as collusion
              Interval("", "h", 10, 50, members=("a", "b"))]           # wrong group: false
    s = score_collusion(alarms, sets, events)
    assert s["sets_found"] == 1 and s["jaccard_mean"] == 0.75 and s["delay_median_s"] == 10
    assert s["false_collusion_alerts"] == 2 and s["precision"] == pytest.approx(1 / 3)
    assert s["benign_events_flagged"] == 1 and s["benign_events_clean_fraction"] == 0.0


def test_honest_false_alarms_within_the_bars_scope():
    """Honest devices of a group where a set larger than the bars' scope colludes are left out of the
    in-scope false-alarm rate (and only of it)."""
    alarms = [Interval("b", "g", 100.0, 200.0), Interval("c", "h", 100.0, 200.0), Interval("c", "h", 300.0, 400.0)]
    s = score_device_events(alarms, [], [], honest_days={"b": 1.0, "c": 1.0}, interval=W, beyond=frozenset({"c"}))
    assert s["fa_per_device_day_honest"] == 1.5 and s["fa_per_device_day_honest_in_scope"] == 1.0
    assert pool_device_scores([s, s], W)["fa_per_device_day_honest_in_scope"] == 1.0


def test_collusion_within_the_bars_scope():
    """Bar 5 is about sets of at most 30% of their group: scored alone, an alert naming a larger set
    counts neither way, and alerts naming no set stay false."""
    sets = [Interval("", "g", 0, 100, members=("a", "b")),                     # 2 of 10: in scope
            Interval("", "h", 0, 100, members=("p", "q", "r", "s", "t"))]      # 5 of 10: larger
    alarms = [Interval("", "g", 10, 50, members=("a", "b")),
              Interval("", "h", 10, 50, members=("p", "q", "r", "s")),
              Interval("", "h", 60, 90, members=("x", "y"))]                     # names no set
    s = score_collusion(alarms, sets, [], group_sizes={"g": 10, "h": 10})
    assert s["sets_found"] == 2 and s["false_collusion_alerts"] == 1
    bar = s["bar"]
    assert (bar["sets"], bar["sets_found"], bar["larger_sets"]) == (1, 1, 1)
    assert (bar["collusion_alerts"], bar["false_collusion_alerts"]) == (2, 1)
    assert bar["precision"] == 0.5 and bar["recall"] == 1.0 and bar["jaccard_mean"] == 1.0
    assert "bar" not in score_collusion(alarms, sets, [])
    pooled = pool_collusion([s, s])
    assert pooled["bar"]["sets"] == 2 and pooled["bar"]["false_collusion_alerts"] == 2
    # by group (the honest false-alarm rate's scope): group h, with its larger set, counts neither way
    g = s["bar_groups"]
    assert (g["sets"], g["sets_found"], g["larger_sets"], g["larger_groups"]) == (1, 1, 1, 1)
    assert (g["collusion_alerts"], g["false_collusion_alerts"], g["precision"]) == (1, 0, 1.0)
    # a false alert in a group without a larger set stays false there
    s2 = score_collusion(alarms + [Interval("", "g", 60, 90, members=("c", "d"))], sets, [],
                         group_sizes={"g": 10, "h": 10})
    assert (s2["bar_groups"]["collusion_alerts"], s2["bar_groups"]["false_collusion_alerts"]) == (2, 1)
    assert pool_collusion([s, s2])["bar_groups"]["false_collusion_alerts"] == 1


def test_pooling_adds_counts_and_pools_delays():
    a = score([Interval("a", "g", 600.0, 700.0)], [label("a")])
    b = score([Interval("a", "g", 600.0 + 10 * W, 2000.0), Interval("b", "g", 0.0, 10.0)], [label("a"), honest("b")])
    p = pool_device_scores([a, b], W)
    assert p["attack_events"] == 2 and p["detected"] == 2 and p["precision"] == pytest.approx(2 / 3)
    assert p["delay_median_s"] == pytest.approx(300.0)
