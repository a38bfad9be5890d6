"""Transport-neutral message envelopes: what a source yields and a dead letter carries."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as it came off a transport, before decoding."""

    value: bytes | None
    key: bytes | None = None
    topic: str = ""
    partition: int = 0
    offset: int = -1


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message (or one element of a batch message) that could not be used, and why."""

    reason: str
    detail: str
    message: RawMessage
    index: int | None = None  # position inside a JSON array message, if any
    extra: dict[str, str] = field(default_factory=dict)
