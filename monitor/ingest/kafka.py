"""Kafka at the edge: a consumer-group source of readings and a producer sink for results.

The only module that imports kafka-python. At-least-once: offsets are
committed only after the batch's alerts and dead letters were acknowledged by
the brokers (``Sink.flush`` then ``Source.commit``).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

from monitor.config import KafkaSettings
from monitor.ingest.messages import DeadLetter, RawMessage
from monitor.schema import Alert

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The brokers could not be reached within the configured time."""


def connect(factory: Callable[[], object], what: str, settings: KafkaSettings,
            on_retry: Callable[[str], None] | None = None, stop: Callable[[], bool] | None = None):
    """Build a Kafka client, retrying while the brokers are unreachable."""
    deadline = time.monotonic() + settings.connect_timeout_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            return factory()
        except KafkaError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline or (stop is not None and stop()):
                raise BrokerUnavailable(
                    f"cannot reach Kafka at {settings.bootstrap_servers} for the {what} after {attempt} attempts "
                    f"({settings.connect_timeout_seconds:g} s): {reason}") from None
            msg = f"Kafka at {settings.bootstrap_servers} unavailable for the {what} (attempt {attempt}): {reason}; retrying"
            log.warning(msg)
            if on_retry:
                on_retry(msg)
            time.sleep(settings.connect_retry_seconds)


def _bootstrap_ms(settings: KafkaSettings) -> int:
    """How long one connection attempt may take: a few attempts fit in the connect timeout."""
    return int(max(0.5, min(5.0, settings.connect_timeout_seconds / 3)) * 1000)


class KafkaSource:
    """A consumer-group member reading the readings topic with manual commits."""

    def __init__(self, settings: KafkaSettings, on_retry: Callable[[str], None] | None = None,
                 stop: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        self._consumer: KafkaConsumer = connect(
            lambda: KafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers.split(","), group_id=settings.group_id,
                client_id=settings.client_id, enable_auto_commit=False,
                auto_offset_reset=settings.auto_offset_reset, max_poll_records=settings.max_poll_records,
                bootstrap_timeout_ms=_bootstrap_ms(settings)),
            "consumer", settings, on_retry, stop)
        self._consumer.subscribe([settings.topic])

    def poll(self, timeout_s: float) -> list[RawMessage]:
        records = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=self.settings.max_poll_records)
        out: list[RawMessage] = []
        for tp in sorted(records, key=lambda t: (t.topic, t.partition)):
            for r in records[tp]:
                out.append(RawMessage(value=r.value, key=r.key, topic=r.topic, partition=r.partition, offset=r.offset))
        return out

    def commit(self) -> None:
        self._consumer.commit()

    @property
    def exhausted(self) -> bool:
        return False

    def assigned(self) -> int:
        return len(self._consumer.assignment())

    def lag(self) -> int | None:
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                return None
            total += max(0, high - self._consumer.position(tp))
        return total

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class KafkaSink:
    """Produces alerts (JSON, keyed by group) and dead letters (raw bytes, reason in headers)."""

    def __init__(self, settings: KafkaSettings, on_retry: Callable[[str], None] | None = None,
                 stop: Callable[[], bool] | None = None, flush_timeout_s: float = 30.0) -> None:
        self.settings = settings
        self.flush_timeout_s = flush_timeout_s
        self._producer: KafkaProducer = connect(
            lambda: KafkaProducer(bootstrap_servers=settings.bootstrap_servers.split(","),
                                  client_id=settings.client_id, acks="all", linger_ms=5,
                                  max_request_size=4 * 1024 * 1024, bootstrap_timeout_ms=_bootstrap_ms(settings)),
            "producer", settings, on_retry, stop)
        self._futures: list = []

    def alerts(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self._futures.append(self._producer.send(
                self.settings.alerts_topic, value=a.model_dump_json().encode(), key=a.group.encode()))

    def dead_letters(self, letters: list[DeadLetter]) -> None:
        for letter in letters:
            msg = letter.message
            headers = [
                ("dlq.reason", letter.reason.encode()), ("dlq.detail", letter.detail.encode()[:1000]),
                ("dlq.source", json.dumps({"topic": msg.topic, "partition": msg.partition,
                                           "offset": msg.offset}).encode()),
            ]
            if letter.index is not None:
                headers.append(("dlq.index", str(letter.index).encode()))
            self._futures.append(self._producer.send(
                self.settings.dead_letter_topic, value=msg.value, key=msg.key, headers=headers))

    def flush(self) -> None:
        """Block until every message sent so far is acknowledged; raise if one failed."""
        self._producer.flush(timeout=self.flush_timeout_s)
        futures, self._futures = self._futures, []
        for f in futures:
            f.get(timeout=self.flush_timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=10)


class ReadingProducer:
    """Sends reading messages (JSON bytes) to the readings topic, keyed by group (the simulator's sink)."""

    def __init__(self, settings: KafkaSettings, on_retry: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._producer: KafkaProducer = connect(
            lambda: KafkaProducer(bootstrap_servers=settings.bootstrap_servers.split(","), client_id=settings.client_id,
                                  acks="all", linger_ms=20, bootstrap_timeout_ms=_bootstrap_ms(settings)),
            "producer", settings, on_retry)

    def send(self, value: bytes, key: bytes | None) -> None:
        self._producer.send(self.settings.topic, value=value, key=key)

    def flush(self) -> None:
        self._producer.flush(timeout=60)

    def close(self) -> None:
        self._producer.close(timeout=10)
