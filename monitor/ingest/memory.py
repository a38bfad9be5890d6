"""An in-process transport: a thread-safe queue of messages, and a sink that keeps results."""

from __future__ import annotations

import queue

from monitor.ingest.messages import DeadLetter, RawMessage
from monitor.schema import Alert


class MemorySource:
    """Messages put by a producer (e.g. the simulator thread) are polled by the service.

    ``close_input()`` marks the end of the stream; the source is exhausted once drained.
    """

    def __init__(self, max_batch: int = 5000, maxsize: int = 100_000) -> None:
        self.max_batch = max_batch
        self._q: queue.Queue[RawMessage | None] = queue.Queue(maxsize=maxsize)
        self._ended = False
        self._offset = 0

    def put(self, value: bytes, key: bytes | None = None) -> None:
        self._q.put(RawMessage(value=value, key=key, topic="memory", offset=self._offset))
        self._offset += 1

    def close_input(self) -> None:
        self._q.put(None)

    def poll(self, timeout_s: float) -> list[RawMessage]:
        out: list[RawMessage] = []
        try:
            item = self._q.get(timeout=timeout_s)
        except queue.Empty:
            return out
        while True:
            if item is None:
                self._ended = True
                break
            out.append(item)
            if len(out) >= self.max_batch:
                break
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                break
        return out

    def commit(self) -> None:
        """In memory there is nothing to commit."""

    @property
    def exhausted(self) -> bool:
        return self._ended and self._q.empty()

    def lag(self) -> int | None:
        return self._q.qsize()

    def close(self) -> None:
        """Nothing to release."""


class MemorySink:
    """Keeps every alert and dead letter in lists (demo and tests)."""

    def __init__(self) -> None:
        self.alert_log: list[Alert] = []
        self.dead_letter_log: list[DeadLetter] = []

    def alerts(self, alerts: list[Alert]) -> None:
        self.alert_log.extend(alerts)

    def dead_letters(self, letters: list[DeadLetter]) -> None:
        self.dead_letter_log.extend(letters)

    def flush(self) -> None:
        """Already durable enough for memory."""

    def close(self) -> None:
        """Nothing to release."""
