"""Alert types: is each single-device interval flagged with the type of what happened (faults are not attacks)?"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.detectors.device import TYPES as DEVICE_TYPES
from monitor.evaluation import report
from monitor.evaluation.scoring import (MISSED, TYPE_MAP, Interval, expected_alert_types, pool_alert_types,
                                        score_alert_types, truth_from_labels)

ROOT = Path(__file__).resolve().parents[2]
W = 60.0
EXPECTED = {"stuck": ("stuck",), "noise": ("noise",), "battery": ("noise",), "bias": ("bias",),
            "drift": ("drift", "bias"), "restart": ()}


def truth(dev, kind, status="fault", start=1000.0, end=5000.0):
    return Interval(dev, "g", start, end, kind, key=status)


def alarm(dev, type_, start, end=math.inf):
    return Interval(dev, "g", start, end, type_)


def label(dev, status, type_, start=600.0, end=None, cset=None, **params):
    return {"device_id": dev, "group": "g", "status": status, "type": type_, "start_ts": start, "end_ts": end,
            "collusion_set": cset, "params": params}


def test_right_type_wrong_type_and_missed():
    truths = [truth("a", "stuck"), truth("b", "battery"), truth("c", "stuck"), truth("d", "bias", "attack")]
    alarms = [alarm("a", "stuck", 1200.0),                          # right
              alarm("b", "bias", 1100.0, 1500.0), alarm("b", "noise", 1500.0),   # wrong first, right later
              alarm("c", "stuck", 100.0, 900.0),                    # over before the fault: missed
              alarm("x", "bias", 1000.0)]                           # another device: nothing to do with it
    s = score_alert_types(alarms, truths, EXPECTED)
    stuck, battery, bias = (s["per_type"][k] for k in ("stuck (fault)", "battery (fault)", "bias (attack)"))
    assert (stuck["events"], stuck["detected"], stuck["right"], stuck["right_any"]) == (2, 1, 1, 1)
    assert stuck["first"] == {"stuck": 1, MISSED: 1} and stuck["right_fraction"] == 0.5
    assert stuck["right_of_detected"] == 1.0
    assert (battery["detected"], battery["right"], battery["right_any"]) == (1, 0, 1)
    assert battery["first"] == {"bias": 1} and battery["expected"] == ["noise"]
    assert bias["first"] == {MISSED: 1} and bias["detected"] == 0
    assert [e["first"] for e in s["events"]] == ["stuck", "bias", MISSED, MISSED]
    assert s["events"][0]["first_after_s"] == 200.0 and s["events"][2]["first_after_s"] is None
    assert s["totals"]["fault"] == {"events": 3, "detected": 2, "typed_events": 3, "right": 1,
                                    "right_fraction": pytest.approx(1 / 3)}
    assert list(s["per_type"])[-1] == "bias (attack)"   # faults first, then attacks


def test_first_alert_is_the_earliest_and_one_already_on_counts():
    s = score_alert_types([alarm("a", "stuck", 3000.0), alarm("a", "bias", 500.0, 2000.0)],
                          [truth("a", "stuck")], EXPECTED)
    assert s["per_type"]["stuck (fault)"]["first"] == {"bias": 1}
    assert s["events"][0]["first_after_s"] == -500.0 and s["events"][0]["right_any"]


def test_grace_after_the_end_as_for_recall():
    truths, alarms = [truth("a", "noise", "attack", end=2000.0)], [alarm("a", "noise", 2300.0)]
    assert score_alert_types(alarms, truths, EXPECTED)["per_type"]["noise (attack)"]["detected"] == 0
    r = score_alert_types(alarms, truths, EXPECTED, grace=10 * W)["per_type"]["noise (attack)"]
    assert (r["detected"], r["right"]) == (1, 1)


def test_truth_without_a_matching_type_reports_what_it_gets():
    s = score_alert_types([alarm("a", "bias", 1100.0)], [truth("a", "restart")], EXPECTED)
    r = s["per_type"]["restart (fault)"]
    assert r["expected"] == [] and r["right"] == 0 and r["first"] == {"bias": 1}
    assert math.isnan(r["right_fraction"]) and s["no_matching_type"] == ["restart"]
    assert s["totals"]["fault"]["typed_events"] == 0 and math.isnan(s["totals"]["fault"]["right_fraction"])


def test_drift_counts_as_drift_or_bias():
    s = score_alert_types([alarm("a", "bias", 1100.0), alarm("b", "drift", 1100.0), alarm("c", "noise", 1100.0)],
                          [truth(d, "drift", "attack") for d in "abc"], EXPECTED)
    assert s["per_type"]["drift (attack)"]["right"] == 2


def test_pooling_adds_counts_and_confusion():
    a = score_alert_types([alarm("a", "stuck", 1100.0)], [truth("a", "stuck"), truth("b", "stuck")], EXPECTED)
    b = score_alert_types([alarm("a", "bias", 1100.0), alarm("b", "noise", 1100.0)],
                          [truth("a", "stuck"), truth("b", "noise", "attack")], EXPECTED)
    p = pool_alert_types([a | {"grace_s": 600.0}, b | {"grace_s": 600.0}])
    stuck = p["per_type"]["stuck (fault)"]
    assert (stuck["events"], stuck["detected"], stuck["right"]) == (3, 2, 1)
    assert stuck["first"] == {"bias": 1, "stuck": 1, MISSED: 1}
    assert stuck["right_fraction"] == pytest.approx(1 / 3) and stuck["right_of_detected"] == 0.5
    assert p["per_type"]["noise (attack)"]["right"] == 1
    assert p["totals"]["attack"]["right"] == 1 and p["totals"]["fault"]["events"] == 3
    assert p["runs"] == 2 and p["grace_s"] == 600.0
    assert p["mapping"]["drift"] == ["drift", "bias"] and p["mapping"]["restart"] == []
    assert pool_alert_types([])["per_type"] == {}


def test_single_device_truths_leave_out_sets_sybils_and_events():
    labels = [label("a", "fault", "stuck"), label("b", "attack", "bias", magnitude=0.5),
              label("c", "attack", "collusion", cset="collusion-0"), label("d", "attack", "collusion",
                                                                          cset="collusion-0"),
              label("s", "attack", "sybil", cset="sybil-0"), label("e", "benign_event", "sun", end=900.0),
              label("f", "fault", "battery", start=100.0, end=700.0)]
    t = truth_from_labels(labels, 0.0, 86400.0)
    assert [(i.device, i.type, i.key, i.end) for i in t.singles] == [
        ("a", "stuck", "fault", math.inf), ("b", "bias", "attack", math.inf), ("f", "battery", "fault", 700.0)]
    assert [i.type for i in t.attacks if i.device == "b"] == ["bias 0.5σ"]   # recall keeps its strength classes


def test_mapping_follows_the_monitors_alert_types():
    exp = expected_alert_types(DEVICE_TYPES)
    assert set(exp) == set(TYPE_MAP)
    assert all(set(v) <= set(DEVICE_TYPES) for v in exp.values())
    assert exp["stuck"] == ("stuck",) and exp["replay_other"] == ("replay",) and exp["drift"] == ("drift", "bias")
    assert expected_alert_types(("bias",))["drift"] == ("bias",) and expected_alert_types(())["noise"] == ()
    assert exp["restart"] == (("restart",) if "restart" in DEVICE_TYPES else ())


def test_every_single_device_kind_of_the_simulator_has_a_mapping():
    from simulators.attacks import KINDS

    singles = {k for k, kind in KINDS.items() if not kind.shared and not kind.creates_devices}
    assert singles <= set(TYPE_MAP), singles - set(TYPE_MAP)


def test_markdown_section_and_confusion_table():
    s = score_alert_types([alarm("a", "bias", 1100.0), alarm("b", "stuck", 1100.0)],
                          [truth("a", "restart"), truth("b", "stuck"), truth("c", "drift", "attack")], EXPECTED)
    md = "\n".join(report.alert_type_section(pool_alert_types([s | {"grace_s": 600.0}]), W))
    assert "### Alert types: faults are not attacks" in md and "up to 10 samples after its end" in md
    assert "| stuck (fault) | 1 | 1 | 1 (100.0%) | 100.0% | 1 | stuck |" in md
    assert "| restart (fault) | 1 | 1 | – | – | – | none: no such alert type |" in md
    assert "No matching alert type" in md and "restart." in md
    assert "| truth type (status) | bias | stuck | missed |" in md
    assert "| drift (attack) | · | · | 1 |" in md
    assert report.alert_type_section({}, W) == []


def test_the_reporting_set_covers_the_benign_faults():
    from monitor.evaluation.suite import load, scenario_files

    files = scenario_files([str(ROOT / "scenarios/reporting")])   # the default of `poison-monitor evaluate`
    faults = [f for f in files if Path(f).name == "faults.yaml"]
    assert faults, files
    kinds = {(a.type, a.status) for a in load(faults[0]).attacks}
    assert {("stuck", "fault"), ("battery", "fault"), ("restart", "fault")} <= kinds


TINY = """\
name: tiny-types
groups: 2
devices_per_group: 10
samples: 500
interval_seconds: 60
attacks:
  - {type: stuck, status: fault, start: 200}
  - {type: battery, start: 200, rate: 0.02}
  - {type: restart, start: 250, gap: 10, magnitude: 3.0}
  - {type: bias, start: 200, magnitude: 6.0}
  - {type: collusion, count: 3, start: 200, magnitude: 4.0}
"""


def test_harness_writes_the_alert_type_section(tmp_path):
    scenario, out = tmp_path / "tiny.yaml", tmp_path / "board"
    scenario.write_text(TINY)
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "evaluate", "--scenarios", str(scenario), "--seeds", "0",
         "--baselines", "median_zscore", "--no-sweep", "--beijing", "none", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads((out / "results.json").read_text())
    types = payload["overall"]["alert_types"]
    assert set(types["per_type"]) == {"stuck (fault)", "battery (fault)", "restart (fault)", "bias (attack)"}
    assert all(r["events"] == 1 for r in types["per_type"].values())   # the colluding set is left out
    assert types["per_type"]["bias (attack)"]["first"] == {"bias": 1}  # a 6 sigma bias: found and typed
    assert types["totals"]["fault"]["events"] == 3 and types["grace_s"] == 600.0
    assert types["mapping"]["battery"] == ["noise"] and types["mapping"]["replay_other"] == ["replay"]
    run = payload["runs"][0]["alert_types"]
    assert len(run["events"]) == 4 and payload["per_scenario"]["tiny-types"]["alert_types"]["per_type"]
    md = (out / "SCOREBOARD.md").read_text()
    assert "### Alert types: faults are not attacks" in md and "#### Confusion" in md
    assert "| bias (attack) | 1 | 1 | 1 (100.0%) |" in md
