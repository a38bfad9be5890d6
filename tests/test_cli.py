"""The command line as users run it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from monitor.schema import Alert

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_simulate_to_file_then_replay(tmp_path):
    readings, labels, alerts, dead = (tmp_path / n for n in ("r.jsonl", "l.json", "a.jsonl", "d.jsonl"))
    sim = cli("simulate", "--scenario", "demo", "--samples", "500", "--seed", "4", "--out", str(readings),
              "--labels", str(labels))
    assert sim.returncode == 0, sim.stderr
    lines = readings.read_text().splitlines()
    assert len(lines) == 40 * 500
    truth = json.loads(labels.read_text())
    liars = {r["device_id"] for r in truth if r["status"] == "attack"}
    with readings.open("a") as fh:  # garbage in the file is dead-lettered, not fatal
        fh.write("not json\n\n" + json.dumps({"device_id": "x", "group": "g", "ts": 1, "value": "NaN"}) + "\n")
    out = cli("replay", str(readings), "--alerts-out", str(alerts), "--dead-letters-out", str(dead))
    assert out.returncode == 0, out.stderr
    assert "20000 readings, 2 dead letters" in out.stdout
    got = [Alert.model_validate_json(x) for x in alerts.read_text().splitlines()]
    assert {d for a in got if a.state == "firing" and a.kind != "learner" for d in a.devices} == liars
    reasons = [json.loads(x)["reason"] for x in dead.read_text().splitlines()]
    assert reasons == ["not_json", "invalid"]


def test_gateway_batches_replay_like_single_readings(tmp_path):
    single, batched = tmp_path / "s.jsonl", tmp_path / "b.jsonl"
    for path, extra in ((single, []), (batched, ["--gateway-batches"])):
        assert cli("simulate", "--samples", "400", "--seed", "8", "--out", str(path), *extra).returncode == 0
    assert len(batched.read_text().splitlines()) == 4 * 400
    results = []
    for path in (single, batched):
        out = tmp_path / (path.stem + ".alerts")
        assert cli("replay", str(path), "--alerts-out", str(out), "--window-seconds", "60").returncode == 0
        results.append(out.read_text())
    assert results[0] == results[1] and results[0]


def test_bad_options_fail_at_start_naming_the_option(tmp_path):
    r = cli("run", "--detection.cusum-h", "-1")
    assert r.returncode == 2 and "detection.cusum_h" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", "--no-such-option", "1")
    assert r.returncode == 2 and "--no-such-option" in r.stderr
    r = cli("options", env={"POISON_MONITOR_KAFKA__MAX_POLL_RECORDS": "many"})
    assert r.returncode == 2 and "kafka.max_poll_records" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[detection]\nwarmpu = 3\n")
    r = cli("options", "--config", str(bad))
    assert r.returncode == 2 and "detection.warmpu" in r.stderr
    r = cli("replay", str(tmp_path / "missing.jsonl"), "--alerts-out", str(tmp_path / "a"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = cli("simulate", "--scenario", "nope")
    assert r.returncode == 2 and "option scenario" in r.stderr


def test_settings_precedence_file_env_flag(tmp_path):
    cfg = tmp_path / "monitor.toml"
    cfg.write_text('[kafka]\ntopic = "from-file"\ngroup_id = "file-group"\n[detection]\nwarmup = 11\n')
    r = cli("options", "--config", str(cfg), "--detection.warmup", "12",
            env={"POISON_MONITOR_KAFKA__GROUP_ID": "env-group"})
    assert r.returncode == 0, r.stderr
    assert "--kafka.topic = 'from-file'" in r.stdout
    assert "--kafka.group-id = 'env-group'" in r.stdout
    assert "--detection.warmup = 12" in r.stdout


def test_missing_broker_is_retried_and_reported_without_a_traceback():
    r = cli("run", "--kafka.bootstrap-servers", "127.0.0.1:1", "--kafka.connect-timeout-seconds", "3",
            "--kafka.connect-retry-seconds", "0.5", "--metrics.port", "0", timeout=120)
    assert r.returncode == 2
    assert "retrying" in r.stderr and "cannot reach Kafka at 127.0.0.1:1" in r.stderr
    assert "Traceback" not in r.stderr


def test_help_documents_every_option():
    from monitor.config import Settings, describe

    text = cli("run", "--help").stdout
    for row in describe(Settings):
        assert "--" + row["option"].replace("_", "-") in text, row["option"]


def test_demo_refuses_a_checkpoint(tmp_path):
    r = cli("demo", "--rate", "0", "--samples", "50", "--metrics.port", "0", "--no-live",
            "--state.path", str(tmp_path / "s.json.gz"))
    assert r.returncode == 2
    assert "state.path" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s.json.gz").exists()


def test_demo_runs_without_a_broker_and_serves_metrics(tmp_path):
    alerts = tmp_path / "demo.jsonl"
    r = cli("demo", "--rate", "0", "--samples", "500", "--metrics.port", "0", "--alerts-out", str(alerts),
            "--no-live")
    assert r.returncode == 0, r.stderr
    assert "ground truth vs alerts" in r.stdout and "missed" not in r.stdout
    kinds = {json.loads(x)["kind"] for x in alerts.read_text().splitlines()}
    assert {"device", "collusion"} <= kinds
