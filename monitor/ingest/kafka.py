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

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

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
    """A consumer-group member reading the readings topic with manual commits.

    Call it from one thread only (the service loop): KafkaConsumer is not thread-safe. The rebalance
    listener runs on kafka-python's IO thread and only logs and seeks (no blocking calls there).
    """

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
        self._seek: dict[TopicPartition, int] = {}  # where to start partitions a restored state already covers
        self._subscribed = False

    def resume_from(self, offsets: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """A restored state covers the readings before ``offsets``: start each of those partitions at its
        checkpoint offset where that is ahead of the group's committed offset, so that nothing is counted
        twice (call before the first poll). Returns the offsets that will be sought."""
        timeout_ms = int(self.settings.connect_timeout_seconds * 1000)
        self._seek = {}
        for (topic, partition), offset in sorted(offsets.items()):
            tp = TopicPartition(topic, partition)
            try:
                committed = self._consumer.committed(tp, timeout_ms=timeout_ms)
            except KafkaError as exc:
                raise BrokerUnavailable(f"cannot read the committed offset of {topic}[{partition}] for group "
                                        f"{self.settings.group_id}: {type(exc).__name__}: {exc}") from None
            if committed is None or offset > committed:
                self._seek[tp] = offset
            elif committed > offset:
                log.warning("%s[%d]: the group committed offset %d, past the checkpoint's %d: the %d messages "
                            "between were processed but are not in the restored state", topic, partition,
                            committed, offset, committed - offset)
        return {(tp.topic, tp.partition): o for tp, o in self._seek.items()}

    def _subscribe(self) -> None:
        source = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                if revoked:
                    log.info("partitions revoked: %s", _names(revoked))

            def on_partitions_assigned(self, assigned):
                log.info("partitions assigned: %s", _names(assigned))
                for tp in sorted(assigned):
                    offset = source._seek.pop(tp, None)
                    if offset is not None:  # seek is local (no I/O): allowed on the IO thread
                        source._consumer.seek(tp, offset)
                        log.info("%s[%d]: starting at the checkpoint's offset %d", tp.topic, tp.partition, offset)

        self._consumer.subscribe([self.settings.topic], listener=Listener())
        self._subscribed = True

    def poll(self, timeout_s: float) -> list[RawMessage]:
        if not self._subscribed:
            self._subscribe()
        records = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=self.settings.max_poll_records)
        out: list[RawMessage] = []
        for tp in sorted(records, key=lambda t: (t.topic, t.partition)):
            for r in records[tp]:
                out.append(RawMessage(value=r.value, key=r.key, topic=r.topic, partition=r.partition, offset=r.offset))
        return out

    def positions(self) -> dict[tuple[str, int], int]:
        """Next offset of every assigned partition: what everything polled so far covers."""
        timeout_ms = int(self.settings.connect_timeout_seconds * 1000)
        out = {}
        for tp in self._consumer.assignment():
            pos = self._consumer.position(tp, timeout_ms=timeout_ms)
            if pos is not None:
                out[(tp.topic, tp.partition)] = pos
        return out

    def commit(self, offsets: dict[tuple[str, int], int] | None = None) -> None:
        """Commit everything polled so far, or exactly ``offsets`` (topic, partition -> next offset)."""
        if offsets is None:
            self._consumer.commit()
        elif offsets:
            self._consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()})

    @property
    def exhausted(self) -> bool:
        return False

    def assigned(self) -> int:
        return len(self._consumer.assignment())

    def lag(self) -> int | None:
        """Messages behind the end of the assigned partitions; None until every one has been fetched once."""
        total = 0
        for tp in self._consumer.assignment():
            high = self._consumer.highwater(tp)
            if high is None:
                return None
            total += max(0, high - self._consumer.position(tp))
        return total

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _names(partitions) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions)) or "none"


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
