"""Helpers for tests against the real broker: topics, producing (kafka-python and kcat),
consuming, and the monitor as a real subprocess (`python -m monitor run`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Topics:
    readings: str
    alerts: str
    dlq: str
    group: str

    @classmethod
    def fresh(cls, bootstrap: str, partitions: int = 3) -> "Topics":
        tag = uuid.uuid4().hex[:8]
        t = cls(f"readings-{tag}", f"alerts-{tag}", f"dlq-{tag}", f"monitor-{tag}")
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(t.readings, partitions, 1), NewTopic(t.alerts, 1, 1), NewTopic(t.dlq, 1, 1)])
        finally:
            admin.close()
        return t


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, value=value, key=key)
        producer.flush(timeout=60)
    finally:
        producer.close()


def kcat_produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce keyed messages with kcat (librdkafka: a non-Python client)."""
    kcat = shutil.which("kcat") or pytest.fail("kcat not found on PATH (apt-get install kcat)")
    lines = b"".join(key + b"|" + value + b"\n" for key, value in messages)
    proc = subprocess.run([kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "|", "-X", "acks=all"],
                          input=lines, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()


def consume_all(bootstrap: str, topic: str, quiet_s: float = 3.0, timeout_s: float = 60.0) -> list:
    """Every record of a topic, reading until nothing new arrives for ``quiet_s``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             group_id=None)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    records, last, start = [], time.monotonic(), time.monotonic()
    try:
        while time.monotonic() - last < quiet_s and time.monotonic() - start < timeout_s:
            got = consumer.poll(timeout_ms=300)
            for batch in got.values():
                records.extend(batch)
                last = time.monotonic()
    finally:
        consumer.close()
    return records


def committed_and_end(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        end = consumer.end_offsets(parts)
        committed = sum(offsets[tp].offset for tp in parts if tp in offsets and offsets[tp].offset >= 0)
        return committed, sum(end.values())
    finally:
        admin.close()
        consumer.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metric_values(url: str) -> dict[tuple[str, tuple], float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(values: dict, name: str, **labels) -> float:
    return sum(v for (n, lab), v in values.items()
               if n == name and all(dict(lab).get(k) == val for k, val in labels.items()))


@dataclass
class Monitor:
    """`python -m monitor run` as a subprocess, with its log captured to a file."""

    bootstrap: str
    topics: Topics
    workdir: Path
    extra: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self, n: int = 0) -> "Monitor":
        self.log = self.workdir / f"monitor-{n}.log"
        cmd = [sys.executable, "-m", "monitor", "run", "--kafka.bootstrap-servers", self.bootstrap,
               "--kafka.topic", self.topics.readings, "--kafka.alerts-topic", self.topics.alerts,
               "--kafka.dead-letter-topic", self.topics.dlq, "--kafka.group-id", self.topics.group,
               "--kafka.poll-timeout-ms", "200", "--metrics.port", str(self.port), *self.extra]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log.open("wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"monitor exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                metric_values(self.metrics_url)
                return self
            except OSError:
                time.sleep(0.2)
        pytest.fail("monitor did not serve /metrics within 60 s")

    def metrics(self) -> dict:
        return metric_values(self.metrics_url)

    def probe(self, path: str) -> tuple[int, dict]:
        """(HTTP status, JSON body) of /healthz or /readyz."""
        url = self.metrics_url.replace("/metrics", path)
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def wait_for(self, predicate, timeout_s: float = 120.0, what: str = "condition") -> dict:
        deadline = time.monotonic() + timeout_s
        values: dict = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"monitor exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            values = self.metrics()
            if predicate(values):
                return values
            time.sleep(0.3)
        pytest.fail(f"timed out waiting for {what}; metrics: "
                    f"{ {k[0]: v for k, v in values.items() if 'total' in k[0]} }\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: str = "TERM") -> tuple[int, str]:
        import signal

        self.proc.send_signal(getattr(signal, f"SIG{sig}"))
        code = self.proc.wait(timeout=60)
        return code, self.log.read_text()


def stopped_totals(log: str) -> dict[str, int]:
    m = re.search(r"stopped: (\d+) messages, (\d+) readings, (\d+) dead letters, (\d+) alerts", log)
    assert m, f"no final totals in the log:\n{log[-2000:]}"
    return dict(zip(("messages", "readings", "dead_letters", "alerts"), map(int, m.groups())))


def reading_messages(sim) -> list[tuple[bytes, bytes]]:
    """(key=group, value=JSON reading) in the simulator's order."""
    return [(r["group"].encode(), json.dumps(r).encode()) for r in sim.readings()]
