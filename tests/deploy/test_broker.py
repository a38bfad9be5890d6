"""The development Kafka broker (deploy/kafka/broker.py) against real clients: kafka-python and kcat."""
import re
import shutil
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from tests.kafka_fixture import BROKER_PY, broker_module

pytestmark = pytest.mark.kafka


def _topic(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _consume(consumer, n, timeout=30.0):
    """Poll until n records arrived (or timeout); return them in order."""
    records, deadline = [], time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def _produce(bootstrap, topic, values):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for v in values:
            producer.send(topic, v).get(timeout=30)
    finally:
        producer.close()


def _kcat(*args, input=None):
    kcat = shutil.which("kcat") or pytest.fail("kcat not found on PATH (apt-get install kcat)")
    proc = subprocess.run([kcat, *args], input=input, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_broker_is_ready(kafka_broker):
    assert re.fullmatch(r"127\.0\.0\.1:\d+", kafka_broker.bootstrap_servers)
    assert kafka_broker.running and kafka_broker.ready()
    assert 0 < kafka_broker.startup_seconds < 120
    assert broker_module.metadata_brokers("127.0.0.1", kafka_broker.port) == [(1, "127.0.0.1", kafka_broker.port)]


def test_admin_creates_topic_and_messages_round_trip(kafka_broker):
    bootstrap, topic = kafka_broker.bootstrap_servers, _topic()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        assert topic in admin.list_topics()
    finally:
        admin.close()
    values = [f"reading-{i}".encode() for i in range(20)]
    _produce(bootstrap, topic, values)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        records = _consume(consumer, len(values))
    finally:
        consumer.close()
    assert sorted(r.value for r in records) == sorted(values)
    assert {r.partition for r in records} <= {0, 1, 2}


def test_kcat_produces_and_consumes(kafka_broker):
    bootstrap, topic = kafka_broker.bootstrap_servers, _topic("kcat")  # auto-created by the produce
    _kcat("-P", "-b", bootstrap, "-t", topic, "-K", ":", input=b"sensor-7:21.5\n")
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    try:
        [record] = _consume(consumer, 1)
    finally:
        consumer.close()
    assert (record.key, record.value) == (b"sensor-7", b"21.5")
    _produce(bootstrap, topic, [b"22.0"])
    out = _kcat("-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
    assert out.decode().splitlines() == ["sensor-7=21.5", "=22.0"]


def test_consumer_group_commits_offsets(kafka_broker):
    bootstrap, topic, group = kafka_broker.bootstrap_servers, _topic(), _topic("group")
    _produce(bootstrap, topic, [b"a", b"b", b"c"])
    tp = TopicPartition(topic, 0)

    def group_consumer():
        return KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)

    consumer = group_consumer()
    try:
        assert [r.value for r in _consume(consumer, 3)] == [b"a", b"b", b"c"]
        consumer.commit()
        assert consumer.committed(tp) == 3
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert admin.list_group_offsets(group)[group][tp].offset == 3  # kafka-python 3.0 name
    finally:
        admin.close()
    _produce(bootstrap, topic, [b"d"])
    consumer = group_consumer()  # resumes after the committed offset
    try:
        assert [r.value for r in _consume(consumer, 1)] == [b"d"]
    finally:
        consumer.close()


def test_cli_start_status_stop(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, str(BROKER_PY), *args, "--dir", str(tmp_path)],
                              capture_output=True, text=True, timeout=180)

    start = cli("start")
    try:
        assert start.returncode == 0, start.stderr
        bootstrap = start.stdout.strip()
        port = int(bootstrap.rsplit(":", 1)[1])
        assert bootstrap == f"127.0.0.1:{port}"
        pid = int((tmp_path / "broker.pid").read_text())
        status = cli("status")
        assert status.returncode == 0
        assert status.stdout.strip() == f"running pid={pid} bootstrap={bootstrap} ready"
        again = cli("start")
        assert again.returncode == 1 and again.stderr.count("\n") == 1 and "already running" in again.stderr
    finally:
        stop = cli("stop")
    assert (stop.returncode, stop.stdout.strip()) == (0, "stopped")
    assert not (tmp_path / "broker.pid").exists()
    assert not broker_module.Broker(tmp_path).running
    status = cli("status")
    assert (status.returncode, status.stdout.strip()) == (3, "not running")
