"""The monitor end to end on the real broker: simulated readings (kafka-python and kcat) in,
alerts and dead letters out, /metrics counting them, restarts losing nothing, and
`replay` agreeing with `run`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from monitor.schema import Alert
from simulators import FleetSimulator, preset
from tests.kafka.harness import (ROOT, Monitor, Topics, committed_and_end, consume_all, kcat_produce, produce,
                                 reading_messages, stopped_totals, total)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def attacked(kafka_broker, tmp_path_factory):
    """One run of the demo scenario through Kafka, shared by the tests that read its results."""
    bootstrap = kafka_broker.bootstrap_servers
    sim = FleetSimulator(preset("demo", samples=600), seed=0)
    messages = reading_messages(sim)
    via_kcat = [m for m in messages if m[0] == sim.groups[0].encode()]  # one whole group through kcat
    via_python = [m for m in messages if m[0] != sim.groups[0].encode()]
    topics = Topics.fresh(bootstrap)
    workdir = tmp_path_factory.mktemp("e2e")
    monitor = Monitor(bootstrap, topics, workdir, ["--idle-flush-seconds", "3"]).start()
    kcat_produce(bootstrap, topics.readings, via_kcat)
    produce(bootstrap, topics.readings, via_python)
    n = len(messages)
    monitor.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= n, what=f"{n} readings")
    # the idle flush closes the last windows; wait until the alert count settles
    alerts = consume_all(bootstrap, topics.alerts, quiet_s=6.0)
    metrics = monitor.metrics()
    probes = {path: monitor.probe(path) for path in ("/healthz", "/readyz")}
    code, log = monitor.stop()
    readings_file = workdir / "readings.jsonl"
    readings_file.write_bytes(b"".join(v + b"\n" for _, v in messages))
    return {"sim": sim, "n": n, "alerts": [Alert.model_validate_json(r.value) for r in alerts],
            "records": alerts, "metrics": metrics, "code": code, "log": log, "topics": topics,
            "bootstrap": bootstrap, "readings_file": readings_file, "workdir": workdir, "probes": probes}


def test_alerts_name_exactly_the_attacking_devices(attacked):
    sim, alerts = attacked["sim"], attacked["alerts"]
    liars = {r["device_id"] for r in sim.labels() if r["status"] == "attack"}
    colluders = {r["device_id"] for r in sim.labels() if r["type"] == "collusion"}
    named = {d for a in alerts if a.state == "firing" and a.kind in ("device", "collusion") for d in a.devices}
    assert named == liars
    collusion = [a for a in alerts if a.kind == "collusion" and a.state == "firing"]
    assert collusion and set(collusion[-1].devices) == colluders
    assert all(r.key == a.group.encode() for r, a in zip(attacked["records"], alerts))  # keyed by group
    assert attacked["code"] == 0, attacked["log"][-2000:]


def test_metrics_count_readings_and_alerts(attacked):
    m, alerts = attacked["metrics"], attacked["alerts"]
    assert total(m, "poison_monitor_messages_total") == attacked["n"]
    assert total(m, "poison_monitor_readings_total", outcome="accepted") == attacked["n"]
    assert total(m, "poison_monitor_alerts_total") == len(alerts)
    assert total(m, "poison_monitor_alerts_total", kind="collusion", state="firing") == \
        sum(a.kind == "collusion" and a.state == "firing" for a in alerts)
    assert total(m, "poison_monitor_dead_letters_total") == 0
    assert total(m, "poison_monitor_batch_duration_seconds_count") > 0
    assert total(m, "poison_monitor_consumer_lag_messages") == 0
    assert total(m, "poison_monitor_kafka_connected") == 1
    # bounded cardinality: no label carries a device or group name, but for the top-K suspicious devices
    devices = {d for a in alerts for d in a.devices} | {a.group for a in alerts}
    named = [(name, labels) for name, labels in m if any(v in devices for _, v in labels)]
    assert named and all(name.startswith("poison_monitor_suspicious_device_") for name, _ in named)
    assert len(named) <= 2 * 10


def test_health_and_readiness_once_caught_up(attacked):
    for path in ("/healthz", "/readyz"):
        status, body = attacked["probes"][path]
        assert status == 200 and body["status"] == "ok", (path, body)
    assert attacked["probes"]["/readyz"][1]["partitions"] == 3 and attacked["probes"]["/readyz"][1]["lag"] == 0
    suspicious = {labels for (name, labels), _ in attacked["metrics"].items()
                  if name == "poison_monitor_suspicious_device_score"}
    assert 0 < len(suspicious) <= 10


def test_replay_gives_the_same_alerts_as_run(attacked):
    out = attacked["workdir"] / "replay-alerts.jsonl"
    proc = subprocess.run([sys.executable, "-m", "monitor", "replay", str(attacked["readings_file"]),
                           "--alerts-out", str(out)], cwd=ROOT, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    replayed = [Alert.model_validate_json(line) for line in out.read_text().splitlines()]

    def key(a):
        return (a.alert_id, a.state, a.kind, a.type, tuple(a.devices), a.onset_ts, a.ts, a.score)

    assert replayed and sorted(map(key, replayed)) == sorted(map(key, attacked["alerts"]))


GOOD = {"device_id": "d-0", "group": "lab/t", "ts": 1767225600.0, "value": 20.0}


def test_garbage_is_dead_lettered_and_the_readings_around_it_are_processed(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    sim = FleetSimulator(preset("clean", groups=2, devices_per_group=5, samples=120), seed=3)
    valid = reading_messages(sim)
    garbage = [
        (b"lab/t", b"this is not json", "not_json"),
        (b"lab/t", json.dumps({**GOOD, "value": "warm"}).encode(), "invalid"),
        (b"lab/t", json.dumps({**GOOD, "ts": [1]}).encode(), "invalid"),
        (b"lab/t", b'{"device_id": "d-0", "group": "lab/t", "ts": 1767225600, "value": NaN}', "invalid"),
        (b"lab/t", json.dumps({"device_id": "d-0", "group": "lab/t"}).encode(), "invalid"),
        (b"lab/t", json.dumps({**GOOD, "pad": "x" * 5000}).encode(), "oversized"),
        (b"lab/t", b"\xff\xfe\xfd", "not_utf8"),
        (b"lab/t", b"42", "not_a_reading"),
    ]
    messages: list[tuple[bytes, bytes]] = []
    for i, (key, value) in enumerate(valid):  # garbage sprinkled between the valid readings
        messages.append((key, value))
        if i % 150 == 0 and garbage:
            g = garbage[(i // 150) % len(garbage)]
            messages.append((g[0], g[1]))
    for g in garbage:
        messages.append((g[0], g[1]))
    # a gateway batch with one bad element: the good ones are kept
    batch = [json.loads(valid[0][1]) | {"device_id": "extra-1"}, {"device_id": "bad id!", "group": "g", "ts": 1,
                                                                    "value": 1}]
    messages.append((b"site-00/temperature", json.dumps(batch).encode()))
    n_bad = sum(1 for k, v in messages if any(v == g[1] for g in garbage)) + 1
    n_valid = len(valid) + 1
    topics = Topics.fresh(bootstrap)
    monitor = Monitor(bootstrap, topics, tmp_path, ["--detection.max-message-bytes", "4096"]).start()
    produce(bootstrap, topics.readings, messages)
    m = monitor.wait_for(lambda m: total(m, "poison_monitor_messages_total") >= len(messages), what="all messages")
    dead = consume_all(bootstrap, topics.dlq)
    code, log = monitor.stop()
    assert code == 0 and "Traceback" not in log
    assert total(m, "poison_monitor_readings_total") == n_valid
    assert total(m, "poison_monitor_dead_letters_total") == n_bad == len(dead)
    by_value = {g[1]: g[2] for g in garbage}
    for rec in dead:
        headers = dict(rec.headers)
        reason = headers["dlq.reason"].decode()
        source = json.loads(headers["dlq.source"])
        assert source["topic"] == topics.readings and headers["dlq.detail"]
        if rec.value in by_value:
            assert reason == by_value[rec.value]
        else:  # the gateway batch: only its bad element, by index
            assert reason == "invalid" and headers["dlq.index"] == b"1" and b"bad id!" in rec.value
    for reason in ("not_json", "invalid", "oversized", "not_utf8", "not_a_reading"):
        assert total(m, "poison_monitor_dead_letters_total", reason=reason) > 0


@pytest.mark.parametrize("how", ["TERM", "KILL"])
def test_restart_mid_stream_processes_every_reading_at_least_once(kafka_broker, tmp_path, how):
    bootstrap = kafka_broker.bootstrap_servers
    sim = FleetSimulator(preset("demo", samples=400), seed=5)
    messages = reading_messages(sim)
    half = len(messages) // 2
    topics = Topics.fresh(bootstrap)
    first = Monitor(bootstrap, topics, tmp_path).start(1)
    produce(bootstrap, topics.readings, messages[:half])
    first.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= half // 2, what="some readings")
    code, log = first.stop(how)
    committed_at_stop, _ = committed_and_end(bootstrap, topics.readings, topics.group)
    if how == "TERM":
        assert code == 0 and stopped_totals(log)["readings"] >= committed_at_stop
    produce(bootstrap, topics.readings, messages[half:])
    second = Monitor(bootstrap, topics, tmp_path, port=first.port).start(2)
    second.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= len(messages) - committed_at_stop,
                    what="the rest of the readings")
    code, log = second.stop()
    committed, end = committed_and_end(bootstrap, topics.readings, topics.group)
    assert committed == end == len(messages)
    assert stopped_totals(log)["readings"] == len(messages) - committed_at_stop  # resumed at the commit
    assert committed_at_stop > 0
