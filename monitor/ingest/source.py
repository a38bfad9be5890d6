"""What the service needs from a transport: sources of raw messages and sinks for results."""

from __future__ import annotations

from typing import Protocol

from monitor.ingest.messages import DeadLetter, RawMessage
from monitor.schema import Alert


class Source(Protocol):
    """Yields micro-batches of raw messages; remembers how far processing got."""

    def poll(self, timeout_s: float) -> list[RawMessage]:
        """The next micro-batch (possibly empty after ``timeout_s``)."""

    def commit(self) -> None:
        """Mark everything returned by ``poll`` so far as processed."""

    @property
    def exhausted(self) -> bool:
        """True once a finite source (a file) has nothing more to give."""

    def lag(self) -> int | None:
        """Messages still waiting, if the transport knows."""

    def close(self) -> None: ...


class Sink(Protocol):
    """Receives alerts and dead letters; ``flush`` returns once they are durable."""

    def alerts(self, alerts: list[Alert]) -> None: ...

    def dead_letters(self, letters: list[DeadLetter]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
