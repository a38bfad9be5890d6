"""The service loop: source → decode → pipeline → sink → checkpoint → commit, with metrics.

Transport-agnostic: the same loop runs the demo (memory), a replay (file) and
the Kafka service. The clock is read here, never in the maths. Only this
loop's thread touches the source; the /readyz probe reads a snapshot of the
readiness facts the loop takes after every poll.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from monitor import checkpoint
from monitor.config import DetectionSettings
from monitor.ingest.decode import DecodedBatch, decode_messages
from monitor.ingest.messages import DeadLetter
from monitor.ingest.source import Sink, Source
from monitor.metrics import Metrics
from monitor.pipeline import Pipeline, Recording, StepResult, infer_window_seconds
from monitor.schema import Alert

log = logging.getLogger("monitor")


@dataclass
class Totals:
    """Running totals of a service (for summaries and the demo's live view)."""

    messages: int = 0
    readings: int = 0
    late: int = 0
    dead_letters: int = 0
    windows: int = 0
    alerts: int = 0
    batches: int = 0
    last_event_ts: float = float("-inf")
    recent: list[Alert] = field(default_factory=list)


@dataclass(frozen=True)
class ReadyFacts:
    """What readiness depends on, taken by the loop thread after a poll (the probe only reads it)."""

    at: float                 # the loop's clock when taken
    partitions: int | None    # assigned partitions (None: the source has none)
    lag: int | None           # messages waiting (None: not known yet)


class Service:
    """Drives a `Pipeline` from a `Source` into a `Sink`, committing after delivery.

    ``idle_flush_seconds``: once the source has been idle that long, every
    open window is closed (so the tail of a finished stream is scored); 0 never.
    ``state_path``: checkpoint file, written every ``checkpoint_every_s`` while the state changes and
    when the loop stops (then ``restore`` must be called before ``run``); ``source_info`` goes into it.
    """

    def __init__(self, detection: DetectionSettings, source: Source, sink: Sink, metrics: Metrics | None = None,
                 idle_flush_seconds: float = 0.0, poll_timeout_s: float = 0.5,
                 on_step: Callable[["Service", StepResult], None] | None = None, top_k: int = 10,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 state_path: str | Path | None = None, checkpoint_every_s: float = 30.0,
                 source_info: dict | None = None) -> None:
        self.detection = detection
        self.source = source
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.idle_flush_seconds = idle_flush_seconds
        self.poll_timeout_s = poll_timeout_s
        self.on_step = on_step
        self.top_k = top_k
        self.heartbeat = clock()  # the last time the loop turned (for /healthz)
        self.pipeline: Pipeline | None = None
        self.totals = Totals()
        self._clock, self._wall = clock, wall
        self._held: list[DecodedBatch] = []
        self._last_input = clock()
        self._flushed = True
        self._stop = False
        self.state_path = Path(state_path) if state_path is not None else None
        self.checkpoint_every_s = checkpoint_every_s
        self.source_info = source_info or {}
        #: the state was restored from a checkpoint, or there was none to restore (always, without checkpoints)
        self.restored = self.state_path is None
        self.restored_from: Path | None = None
        self._dirty = False                 # the state changed since the last checkpoint
        self._last_checkpoint = clock()
        self._facts: ReadyFacts | None = None

    def health(self, max_silence_s: float = 60.0) -> tuple[bool, dict]:
        """Alive: the loop turned within ``max_silence_s``."""
        age = self._clock() - self.heartbeat
        return age <= max_silence_s, {"loop_age_seconds": round(age, 3)}

    def readiness(self, max_lag: int, max_age_s: float = 60.0) -> tuple[bool, dict]:
        """Ready: state restored (or none to restore), partitions assigned (if the source has them) and
        caught up within ``max_lag`` messages, per the loop's last snapshot (not older than ``max_age_s``).

        Safe from any thread: reads the snapshot only, never the source."""
        facts = self._facts
        waiting = [] if self.restored else ["restore"]
        body = {"restored": self.restored, "restored_from": str(self.restored_from) if self.restored_from else None,
                "partitions": None, "lag": None, "max_lag": max_lag, "snapshot_age_seconds": None}
        if facts is None:
            waiting.append("first poll")
        else:
            age = self._clock() - facts.at
            body.update(partitions=facts.partitions, lag=facts.lag, snapshot_age_seconds=round(age, 3))
            if facts.partitions is not None and facts.partitions == 0:
                waiting.append("partition assignment")
            if facts.lag is None and facts.partitions is not None:
                waiting.append("consumer position")
            elif facts.lag is not None and facts.lag > max_lag:
                waiting.append("catch-up")
            if age > max_age_s:
                waiting.append("service loop (snapshot stale)")
        body["waiting_for"] = waiting
        return not waiting, body

    def restore(self, restored: "checkpoint.Restored | None") -> None:
        """Take a checkpoint's pipeline (or none: a fresh start) and position the source after the readings
        its state covers; from then on the service counts as restored."""
        if restored is not None:
            self.pipeline = restored.pipeline
            if self.metrics.per_group is not None:
                self.pipeline.recording = Recording()
            self.restored_from = restored.path
            resume = getattr(self.source, "resume_from", None)
            if resume is not None:
                resume(restored.checkpoint.offsets)
            self.metrics.state_restored.set(1)
            log.info("restored the detection state from %s (%d groups, %d devices, %g-second windows)",
                     restored.path, self.pipeline.registry.n_groups, self.pipeline.registry.n_devices,
                     self.pipeline.window_seconds)
        self.restored = True

    def checkpoint(self) -> bool:
        """Write the state and the offsets it covers, then commit exactly those offsets. False if there is
        nothing to write yet (no pipeline) or the write failed (logged, counted, retried when next due)."""
        if self.state_path is None or self.pipeline is None:
            return False
        self._last_checkpoint = started = self._clock()
        positions = getattr(self.source, "positions", None)
        offsets = positions() if positions is not None else {}
        ck = checkpoint.Checkpoint(state=self.pipeline.state_dict(), offsets=offsets,
                                   detection=self.detection.model_dump(), source=self.source_info,
                                   written_at=self._wall())
        try:
            size = checkpoint.write(self.state_path, ck)
        except (OSError, ValueError, TypeError) as exc:
            self.metrics.checkpoint_failures.inc()
            log.error("could not write the checkpoint %s (%s: %s); offsets are still committed, and a restart "
                      "would resume from the previous checkpoint", self.state_path, type(exc).__name__, exc)
            self.source.commit()
            return False
        if positions is not None:
            self.source.commit(offsets)
        else:
            self.source.commit()
        self._dirty = False
        m = self.metrics
        m.checkpoint_bytes.set(size)
        m.checkpoint_seconds.set(self._clock() - started)
        m.checkpoint_time.set(ck.written_at)
        log.debug("checkpoint %s: %d bytes, offsets %s", self.state_path, size, offsets)
        return True

    def stop(self) -> None:
        """Ask the loop to finish after the current batch."""
        self._stop = True

    @property
    def stopping(self) -> bool:
        return self._stop

    # ------------------------------------------------------------------ loop
    def run(self, duration: float | None = None) -> Totals:
        """Process until stopped, the duration passes, or a finite source is exhausted."""
        end = None if duration is None else self._clock() + duration
        while not self._stop:
            if end is not None and self._clock() >= end:
                break
            timeout = self.poll_timeout_s if end is None else max(0.0, min(self.poll_timeout_s, end - self._clock()))
            self.step(timeout)
            if self.source.exhausted:
                self.finish()
                return self.totals
        if self._dirty:  # a clean stop: the state up to the last delivered batch (else the file already is)
            self.checkpoint()
        return self.totals

    def step(self, timeout_s: float) -> StepResult:
        """Poll one micro-batch, process it, deliver its results, then commit."""
        messages = self.source.poll(timeout_s)
        started = self.heartbeat = self._clock()
        if messages:
            self._last_input = started
            self._flushed = False
            batch = decode_messages(messages, self.detection.max_message_bytes)
            result = self._process(batch)
            dead = batch.dead_letters
        elif (self.idle_flush_seconds > 0 and not self._flushed
              and started - self._last_input >= self.idle_flush_seconds):
            result, dead = self._flush(), []
        else:
            result, dead = StepResult(), []
        if messages or result.windows:
            self._dirty = True
        if messages or result.alerts:
            self._deliver(result.alerts, dead)
            if not self._checkpoint_due():
                self.source.commit()
        if self._checkpoint_due():
            self.checkpoint()  # after delivery, before the commit (it commits the offsets it wrote)
        self._account(len(messages), result, dead, self._clock() - started if messages else None)
        return result

    def _checkpoint_due(self) -> bool:
        return (self.state_path is not None and self._dirty and self.pipeline is not None
                and self._clock() - self._last_checkpoint >= self.checkpoint_every_s)

    def finish(self) -> StepResult:
        """End of a finite stream: close every open window, deliver what it raises, checkpoint, commit."""
        result = self._flush()
        self._deliver(result.alerts, [])
        self._dirty = self._dirty or result.windows > 0
        if not (self._dirty and self.checkpoint()):
            self.source.commit()
        self._account(0, result, [], None)
        return result

    # ------------------------------------------------------------------ parts
    def _process(self, batch: DecodedBatch) -> StepResult:
        if self.pipeline is None:
            self._held.append(batch)
            held = self._merge(self._held)
            try:
                window = self.detection.window_seconds or infer_window_seconds(held.device_ids, held.ts)
            except ValueError:
                return StepResult(readings=len(batch))  # wait for more data to infer the window
            # with per-group metrics, the pipeline records each window's consensus (drained after every batch)
            self.pipeline = Pipeline(self.detection, window_seconds=window, record=self.metrics.per_group is not None)
            log.info("window length %s s (%s)", window, "configured" if self.detection.window_seconds else "inferred")
            self._held = []
            result = self.pipeline.process(held)
            result.readings = len(batch)
            return result
        return self.pipeline.process(batch)

    @staticmethod
    def _merge(batches: list[DecodedBatch]) -> DecodedBatch:
        return DecodedBatch(
            device_ids=[d for b in batches for d in b.device_ids], groups=[g for b in batches for g in b.groups],
            ts=np.concatenate([b.ts for b in batches]), values=np.concatenate([b.values for b in batches]),
            seq=np.concatenate([b.seq if b.seq is not None else np.full(len(b), -1, np.int64) for b in batches]))

    def _flush(self) -> StepResult:
        self._flushed = True
        if self.pipeline is None:
            if not self._held:
                return StepResult()
            held = self._merge(self._held)
            log.warning("stream ended before the window length could be inferred: %d readings not scored", len(held))
            self._held = []
            return StepResult()
        return self.pipeline.flush()

    def _deliver(self, alerts: list[Alert], dead: list[DeadLetter]) -> None:
        """Send and wait for acknowledgement, retrying until it works or the service is stopped."""
        delay = 0.5
        while True:
            try:
                self.sink.alerts(alerts)
                self.sink.dead_letters(dead)
                self.sink.flush()
                self.metrics.broker_up.set(1)
                return
            except Exception as exc:  # a transport failure: keep the batch, retry
                self.metrics.delivery_failures.inc()
                self.metrics.broker_up.set(0)
                log.warning("could not deliver %d alerts and %d dead letters (%s: %s); retrying in %.1f s",
                            len(alerts), len(dead), type(exc).__name__, exc, delay)
                if self._stop:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _account(self, n_messages: int, result: StepResult, dead: list[DeadLetter], seconds: float | None) -> None:
        m, t = self.metrics, self.totals
        t.messages += n_messages
        t.readings += result.readings
        t.late += result.late
        t.dead_letters += len(dead)
        t.windows += result.windows
        t.alerts += len(result.alerts)
        if n_messages:
            t.batches += 1
        m.messages.inc(n_messages)
        m.readings.labels("accepted").inc(result.readings - result.late)
        m.readings.labels("late").inc(result.late)
        for d in dead:
            m.dead_letters.labels(d.reason).inc()
        m.windows.inc(result.windows)
        m.uncertain_windows.inc(result.uncertain_windows)
        for outcome, n in result.collusion_holds.items():
            m.collusion_holds.labels(outcome).inc(n)
        p = self.pipeline
        if p is not None:
            m.groups_seen(p.registry.group_names)  # new groups get their label before their alerts count
        for a in result.alerts:
            m.alert(a.kind, a.type, a.state, a.group)
            log.info("ALERT %s %s/%s group=%s devices=%s onset_ts=%.0f score=%.2f id=%s", a.state, a.kind, a.type,
                     a.group, ",".join(a.devices), a.onset_ts, a.score, a.alert_id)
        if result.alerts:
            t.recent = (t.recent + result.alerts)[-50:]
        if seconds is not None:
            m.batch_seconds.observe(seconds)
        lag = self.source.lag()
        if lag is not None:
            m.consumer_lag.set(lag)
        assigned = getattr(self.source, "assigned", None)
        self._facts = ReadyFacts(at=self._clock(), partitions=assigned() if assigned is not None else None, lag=lag)
        if p is not None:
            for state, count in p.trust_states().items():
                m.devices.labels(state).set(count)
            m.suspicious.rows = p.suspicious(self.top_k)
            m.groups.set(p.registry.n_groups)
            m.collusion_sets.set(p.collusion_sets())
            m.uncertain_groups.set(p.uncertain_groups())
            m.learner_divergence.set(p.learner_divergence())
            if m.per_group is not None:
                rec = p.recording or Recording()
                if p.recording is not None:
                    p.recording = Recording()  # the windows of this batch only: memory stays bounded
                m.per_group.update(p.group_view(), rec.group, rec.consensus, rec.plain_mean)
        if result.max_event_ts > -float("inf"):
            m.event_lag.set(self._wall() - result.max_event_ts)
            t.last_event_ts = max(t.last_event_ts, result.max_event_ts)
        if self.on_step is not None:
            self.on_step(self, result)
