"""State checkpoints on the real broker: `run --state.path` stopped with SIGTERM and started again resumes
detection where it was (an attack right after the restart is alerted when an uninterrupted run alerts
it), its offsets are the committed ones, a checkpoint ahead of the committed offsets is sought to, and
/readyz waits for the restore, the assignment and the catch-up."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from monitor import checkpoint
from monitor.config import DetectionSettings, KafkaSettings
from monitor.ingest.kafka import KafkaSink, KafkaSource
from monitor.metrics import Metrics
from monitor.schema import Alert
from monitor.service import Service
from simulators import FleetSimulator, preset
from tests.helpers import run_pipeline
from tests.kafka.harness import Monitor, Topics, consume_all, produce, stopped_totals, total

pytestmark = pytest.mark.kafka

RESTART_TICK = 200   # the monitor is stopped after this many samples per device (60 s apart)
ATTACK_TICK = 205    # ... and one device starts lying 5 windows later


def attacked_fleet() -> tuple[FleetSimulator, list[dict], list[dict]]:
    """40 honest devices, one of which starts a 5-sigma bias just after the restart: (sim, before, after)."""
    sim = FleetSimulator(preset("clean", samples=300, attacks=[
        {"type": "bias", "group": 1, "count": 1, "start": ATTACK_TICK, "magnitude": 5.0}]), seed=7)
    readings = list(sim.readings())
    cut = sim.scenario.start_ts + RESTART_TICK * sim.scenario.interval_seconds
    return sim, [r for r in readings if r["ts"] < cut], [r for r in readings if r["ts"] >= cut]


def messages(readings: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(r["group"].encode(), json.dumps(r).encode()) for r in readings]


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[tuple[str, int], int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {(tp.topic, tp.partition): o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset >= 0}


def fields(a: Alert) -> tuple:
    return (a.alert_id, a.state, a.kind, a.type, tuple(a.devices), a.onset_ts, a.ts, a.score)


class ReadyzWatcher:
    """Polls /readyz from before the process serves it until stopped: every answer, in order."""

    def __init__(self, url: str) -> None:
        self.url, self.seen, self._stop = url, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    self.seen.append((resp.status, json.loads(resp.read())))
            except urllib.error.HTTPError as err:
                self.seen.append((err.code, json.loads(err.read())))
            except OSError:
                pass  # not listening yet
            self._stop.wait(0.02)

    def stop(self) -> list[tuple[int, dict]]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.seen


def test_sigterm_then_restart_resumes_detection_from_the_checkpoint(kafka_broker, tmp_path):
    bootstrap = kafka_broker.bootstrap_servers
    sim, before, after = attacked_fleet()
    liar = next(r["device_id"] for r in sim.labels() if r["status"] == "attack")
    topics = Topics.fresh(bootstrap)
    state = tmp_path / "state.json.gz"

    # 1. the first part, then SIGTERM: the final checkpoint covers exactly what was committed
    first = Monitor(bootstrap, topics, tmp_path, ["--state.path", str(state), "--state.every-seconds", "1"]).start(1)
    produce(bootstrap, topics.readings, messages(before))
    first.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= len(before), what="the first part")
    status, body = first.probe("/readyz")
    assert status == 200 and body["restored"] is True and body["restored_from"] is None, body  # nothing to restore
    code, log = first.stop("TERM")
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert stopped_totals(log)["readings"] == len(before)
    ck = checkpoint.read(state)
    committed = committed_offsets(bootstrap, topics.group, topics.readings)
    assert ck.offsets == committed and sum(committed.values()) == len(before) and len(committed) == 3
    assert ck.source == {"topic": topics.readings, "group_id": topics.group}
    assert len(ck.state["registry"]["devices"]) == 40 and ck.state["aligner"]["pending_g"]  # open windows kept

    # 2. the rest is waiting when the monitor starts again; /readyz is watched from the very start
    produce(bootstrap, topics.readings, messages(after))
    second = Monitor(bootstrap, topics, tmp_path, ["--state.path", str(state), "--idle-flush-seconds", "3",
                                                   "--metrics.ready-max-lag", "0", "--kafka.max-poll-records", "500"],
                     port=first.port)
    watcher = ReadyzWatcher(second.metrics_url.replace("/metrics", "/readyz"))
    try:
        second.start(2)
        m = second.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= len(after), what="the rest")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (watcher.seen and watcher.seen[-1][0] == 200):
            time.sleep(0.1)
    finally:
        probes = watcher.stop()
    records = consume_all(bootstrap, topics.alerts, quiet_s=6.0)  # the idle flush closes the last windows
    code, log = second.stop("TERM")
    assert code == 0 and "Traceback" not in log, log[-3000:]
    assert f"restored the detection state from {state}" in log
    assert stopped_totals(log)["readings"] == len(after)  # nothing read twice, nothing skipped
    assert total(m, "poison_monitor_state_restored") == 1
    assert checkpoint.read(state).offsets == committed_offsets(bootstrap, topics.group, topics.readings)

    # (i) the same alerts as one uninterrupted run over all readings, the new attack at the same window ...
    alerts = [Alert.model_validate_json(r.value) for r in records]
    _, straight = run_pipeline(before + after)
    assert sorted(map(fields, alerts)) == sorted(map(fields, straight))
    caught = [a for a in alerts if a.state == "firing" and a.devices == [liar]]
    assert len(caught) == 1 and caught[0].ts >= sim.scenario.start_ts + ATTACK_TICK * 60
    # ... which a monitor starting without the state misses: its devices would still be warming up
    _, fresh = run_pipeline(after)
    assert not [a for a in fresh if liar in a.devices and a.ts <= caught[0].ts]

    # (ii) /readyz: not ready until restored, assigned and caught up (lag 0), then ready, restored
    assert probes and probes[0][0] == 503 and probes[-1][0] == 200, probes[:3] + probes[-3:]
    ready_at = next(i for i, (code, _) in enumerate(probes) if code == 200)
    for code, body in probes[:ready_at]:
        assert body["waiting_for"], body
    assert any(not body["restored"] or body["partitions"] in (None, 0) for _, body in probes[:ready_at]), probes[:5]
    for code, body in probes[ready_at:]:
        if code == 200:
            assert body["restored"] is True and body["restored_from"] == str(state), body
            assert body["partitions"] == 3 and body["lag"] == 0 and body["waiting_for"] == [], body
            assert 0 <= body["snapshot_age_seconds"] < 60


def test_a_checkpoint_ahead_of_the_committed_offsets_is_sought_to(kafka_broker, tmp_path):
    """A crash after the checkpoint was written but before the commit: the group's committed offsets are
    behind the checkpoint. The restarted service starts at the checkpoint's offsets, so the readings its
    state already holds are not counted twice; /readyz follows restore, assignment and catch-up."""
    bootstrap = kafka_broker.bootstrap_servers
    sim, before, after = attacked_fleet()
    topics = Topics.fresh(bootstrap)
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic=topics.readings, alerts_topic=topics.alerts,
                             dead_letter_topic=topics.dlq, group_id=topics.group, poll_timeout_ms=200)
    state = tmp_path / "state.json.gz"
    produce(bootstrap, topics.readings, messages(before))

    def service() -> Service:
        return Service(DetectionSettings(), KafkaSource(settings), KafkaSink(settings), Metrics(),
                       poll_timeout_s=0.2, state_path=state, checkpoint_every_s=3600,
                       source_info={"topic": topics.readings, "group_id": topics.group})

    def run_until(svc: Service, done, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, f"timed out: {svc.totals}"
            svc.step(0.2)

    a = service()
    a.restore(None)
    run_until(a, lambda: a.totals.readings >= len(before))
    assert a.checkpoint()
    a.source.close()
    a.sink.close()
    written = checkpoint.read(state).offsets
    assert sum(written.values()) == len(before)
    # the crash: the commit of the last batches never happened
    behind = {tp: off // 2 for tp, off in written.items()}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=topics.group, enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in behind.items()})
    finally:
        consumer.close(autocommit=False)
    assert committed_offsets(bootstrap, topics.group, topics.readings) == behind

    produce(bootstrap, topics.readings, messages(after))
    b = service()
    ok, body = b.readiness(max_lag=0)
    assert not ok and body["restored"] is False and body["waiting_for"] == ["restore", "first poll"]
    b.restore(checkpoint.restore(state, DetectionSettings(), topic=topics.readings))
    ok, body = b.readiness(max_lag=0)
    assert not ok and body["restored"] is True and body["waiting_for"] == ["first poll"]
    try:
        run_until(b, lambda: b.readiness(max_lag=0)[0])
        run_until(b, lambda: b.totals.readings >= len(after))
        b.step(0.2)
        assert b.totals.readings == len(after)  # started at the checkpoint, not at the committed offsets
        b.stop()
        b.run()  # a clean stop: the final checkpoint and its commit
    finally:
        b.source.close()
        b.sink.close()
    ok, body = b.readiness(max_lag=0)
    assert body["partitions"] == 3 and body["lag"] == 0 and body["restored_from"] == str(state)
    end = checkpoint.read(state).offsets
    assert end == committed_offsets(bootstrap, topics.group, topics.readings)
    assert sum(end.values()) == len(before) + len(after)


def test_a_rebalance_splits_the_partitions_and_each_checkpoint_covers_its_own(kafka_broker, tmp_path):
    """Two monitors in one group: the second one's arrival moves partitions away from the first. Every
    reading is processed once in all; each checkpoint holds the offsets of the partitions its process
    owns (equal to the committed ones), while the first one's state still holds every group it saw."""
    bootstrap = kafka_broker.bootstrap_servers
    _, before, after = attacked_fleet()
    topics = Topics.fresh(bootstrap)
    settings = KafkaSettings(bootstrap_servers=bootstrap, topic=topics.readings, alerts_topic=topics.alerts,
                             dead_letter_topic=topics.dlq, group_id=topics.group, poll_timeout_ms=200,
                             max_poll_records=500)
    produce(bootstrap, topics.readings, messages(before))

    def service(name: str) -> Service:
        svc = Service(DetectionSettings(), KafkaSource(settings), KafkaSink(settings), Metrics(), poll_timeout_s=0.2,
                      state_path=tmp_path / f"{name}.json.gz", checkpoint_every_s=3600,
                      source_info={"topic": topics.readings, "group_id": topics.group})
        svc.restore(None)
        return svc

    a = service("a")
    services = [a]
    try:
        deadline = time.monotonic() + 60
        while a.totals.readings < len(before):
            assert time.monotonic() < deadline, a.totals
            a.step(0.2)
        b = service("b")
        services.append(b)

        def step_both_until(done) -> None:
            while not done():
                assert time.monotonic() < deadline, (a.totals.readings, b.totals.readings)
                for svc in services:  # one thread drives both (each consumer is only ever used by this thread)
                    svc.step(0.2)

        step_both_until(lambda: a.source.assigned() and b.source.assigned())
        produce(bootstrap, topics.readings, messages(after))
        n = len(before) + len(after)
        step_both_until(lambda: a.totals.readings + b.totals.readings >= n)
        assert b.totals.readings > 0
        for svc in services:
            svc.stop()
            svc.run()  # a clean stop: final checkpoint, then its commit
        assert a.totals.readings + b.totals.readings == n  # once each, across the rebalance
    finally:
        for svc in services:
            svc.source.close()
            svc.sink.close()
    ck_a, ck_b = (checkpoint.read(tmp_path / f"{name}.json.gz") for name in ("a", "b"))
    assert ck_a.offsets and ck_b.offsets and not set(ck_a.offsets) & set(ck_b.offsets)
    assert {**ck_a.offsets, **ck_b.offsets} == committed_offsets(bootstrap, topics.group, topics.readings)
    assert sum(ck_a.offsets.values()) + sum(ck_b.offsets.values()) == n
    assert len(ck_a.state["registry"]["groups"]) == 4  # groups now owned by b stay in a's state, frozen
    assert len(ck_b.state["registry"]["groups"]) < 4
