"""The harness end to end on small runs: the monitor and baselines scored on simulated and real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from monitor.config import DetectionSettings
from monitor.evaluation.baselines import CONSENSUS_BASELINES, DEVICE_BASELINES
from monitor.evaluation.beijing import default_path, duplicate_series
from monitor.alerts import make_alert
from monitor.evaluation.runner import MONITOR, alert_intervals, evaluate
from simulators import FleetSimulator, preset, to_eval_data

ROOT = Path(__file__).resolve().parents[2]
BEIJING = default_path()
needs_beijing = pytest.mark.skipif(not BEIJING.is_file(),
                                   reason=f"real data not found at {BEIJING} (../shared beside the project)")


@pytest.fixture(scope="module")
def mixed_result():
    sim = FleetSimulator(preset("mixed", samples=1200), seed=31)
    return evaluate(to_eval_data(sim), DetectionSettings(), clean=to_eval_data(sim.clean_twin()),
                    device_baselines={k: DEVICE_BASELINES[k] for k in ("always_fire", "median_zscore", "adwin")},
                    consensus_baselines=CONSENSUS_BASELINES)


def test_monitor_and_baselines_are_scored_on_the_same_events(mixed_result):
    det = mixed_result["detectors"]
    assert set(det) == {MONITOR, "always_fire", "median_zscore", "adwin"}
    assert len({d["attack_events"] for d in det.values()}) == 1
    assert det["always_fire"]["recall"] == 1.0 and det["always_fire"]["delay_median_s"] == 0.0
    # always-fire: one alarm run per device, true exactly on the attacked devices
    attacked = {r["device_id"] for r in FleetSimulator(preset("mixed", samples=1200), seed=31).labels()
                if r["status"] == "attack"}
    assert det["always_fire"]["precision"] == pytest.approx(len(attacked) / mixed_result["devices"])
    assert det[MONITOR]["f1"] > det["median_zscore"]["f1"]


def test_consensus_and_learner_sections(mixed_result):
    cons = mixed_result["consensus"]
    assert set(cons) == {MONITOR, *CONSENSUS_BASELINES}
    assert cons[MONITOR]["bias_sigma"] < cons["median"]["bias_sigma"] < cons["mean"]["bias_sigma"]
    lr = mixed_result["learner"]
    assert lr["unguarded_vs_clean"] > 10 * abs(lr["guarded_vs_clean"])
    assert mixed_result["collusion"]["sets"] == 1


def test_evaluate_command_writes_json_markdown_and_plots(tmp_path):
    out = tmp_path / "board"
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "evaluate", "--scenarios",
         "scenarios/reporting/honest.yaml,scenarios/reporting/single-device.yaml", "--seeds", "1001", "--baselines", "median_zscore",
         "--no-sweep", "--beijing", "none", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads((out / "results.json").read_text())
    assert len(payload["runs"]) == 2 and MONITOR in payload["overall"]["detectors"]
    md = (out / "SCOREBOARD.md").read_text()
    assert "poison-monitor evaluate --scenarios" in md and "| **poison-monitor** |" in md
    for png in ("delays.png", "recall_per_type.png"):
        assert (out / "plots" / png).stat().st_size > 1000


def test_duplicate_series_are_found():
    a = np.arange(100.0)
    values = np.array([a, a + np.r_[0, np.ones(99)] * 0, a * 2, a])
    assert duplicate_series(values, ["s0", "s1", "s2", "s3"]) == {"s1": "s0", "s3": "s0"}


@needs_beijing
def test_beijing_with_injected_attacks_has_truth_and_scores(tmp_path):
    from monitor.evaluation.beijing import to_eval_data as beijing
    from monitor.evaluation.inject import inject

    clean = beijing(hours=3000, quantities=("PM2.5", "TEMP", "PRES"))
    assert clean.meta["duplicates_dropped"]["TEMP"]  # the shared weather feeds are de-duplicated
    attacks = tmp_path / "attacks.yaml"
    attacks.write_text("name: t\nattacks:\n"
                       "  - {type: bias, group: PM2.5, count: 1, start: 1000, magnitude: 4}\n"
                       "  - {type: collusion, group: TEMP, count: 2, start: 1500, magnitude: 3}\n")
    data = inject(clean, attacks, seed=1)
    attacked = [r for r in data.labels if r["status"] == "attack"]
    assert len(attacked) == 3 and {r["type"] for r in attacked} == {"bias", "collusion"}
    changed = np.flatnonzero(np.nansum(np.abs(data.values - clean.values), axis=1) > 0)
    assert {data.device_ids[i] for i in changed} == {r["device_id"] for r in attacked}
    r = evaluate(data, DetectionSettings(), clean=clean, device_baselines={}, consensus_baselines=CONSENSUS_BASELINES)
    assert r["detectors"][MONITOR]["attack_events"] == 3


def test_any_csv_of_readings_replays_with_injected_attacks(tmp_path):
    from monitor.evaluation.csvdata import from_csv
    from monitor.evaluation.inject import inject

    sim = FleetSimulator(preset("clean", groups=2, devices_per_group=8, samples=600), seed=4)
    csv_path = tmp_path / "fleet.csv"
    with csv_path.open("w") as fh:
        fh.write("device_id,group,ts,value\n")
        for r in sim.readings():
            fh.write(f"{r['device_id']},{r['group']},{r['ts']},{r['value']}\n")
    clean = from_csv(csv_path)
    assert clean.interval == 60.0 and clean.values.shape == (16, 600)
    np.testing.assert_allclose(clean.values, sim.values)
    attacks = tmp_path / "a.yaml"
    attacks.write_text(f"attacks:\n  - {{type: bias, group: '{sim.groups[1]}', count: 1, start: 300, magnitude: 5}}\n")
    data = inject(clean, attacks, seed=2)
    r = evaluate(data, DetectionSettings(), clean=clean, device_baselines={}, consensus_baselines={})
    assert r["detectors"][MONITOR]["recall"] == 1.0


def test_a_collusion_alert_that_fires_again_after_resolving_is_open_again():
    """One alert id: firing, resolved, firing again (the same set come back). Its event runs from its
    first firing and stays open; its members are every device it named."""
    def alert(state, ts, devices):
        return make_alert(alert_id="c1", state=state, kind="collusion", type_="collusion", group="g",
                          devices=devices, onset_ts=0.0, ts=ts, score=20.0, evidence={})

    _, sets = alert_intervals([alert("firing", 10.0, ["a", "b"]), alert("resolved", 20.0, ["a", "b"]),
                               alert("firing", 50.0, ["a", "c"])], t_end=100.0)
    assert [(s.start, s.end, s.members) for s in sets] == [(10.0, float("inf"), ("a", "b", "c"))]
