"""Decode raw message bytes into columns of validated readings; errors are data.

A message value is one JSON reading object or a JSON array of them. Whatever
cannot be used becomes a `DeadLetter` with a short machine-readable reason
(``oversized``, ``empty``, ``not_utf8``, ``not_json``, ``not_a_reading``,
``invalid``) and a human-readable detail; the valid readings around it go on.

>>> batch = decode_messages([RawMessage(b'[{"device_id":"a","group":"g","ts":1,"value":2},'
...                                     b' {"device_id":"b","group":"g","ts":1,"value":"x"}]')])
>>> batch.device_ids, batch.values.tolist(), [d.reason for d in batch.dead_letters]
(['a'], [2.0], ['invalid'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
from pydantic import ValidationError

from monitor.ingest.messages import DeadLetter, RawMessage
from monitor.schema import Reading

DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024


@dataclass
class DecodedBatch:
    """Readings of one micro-batch as parallel columns, in message order."""

    device_ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ts: np.ndarray = field(default_factory=lambda: np.empty(0))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    seq: np.ndarray | None = None  # int64 per reading, -1 where the message had none (None: no column)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    messages: int = 0

    def __len__(self) -> int:
        return len(self.device_ids)


def _short(error: ValidationError) -> str:
    parts = []
    for err in error.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "reading"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def decode_messages(
    messages: Iterable[RawMessage], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> DecodedBatch:
    """Decode and validate a micro-batch of messages (pure: no I/O)."""
    device_ids: list[str] = []
    groups: list[str] = []
    ts: list[float] = []
    values: list[float] = []
    seqs: list[int] = []
    dead: list[DeadLetter] = []
    count = 0
    for msg in messages:
        count += 1
        raw = msg.value
        if raw is None or len(raw) == 0:
            dead.append(DeadLetter("empty", "message has no value", msg))
            continue
        if len(raw) > max_message_bytes:
            dead.append(DeadLetter("oversized", f"{len(raw)} bytes > limit {max_message_bytes}", msg))
            continue
        try:
            text = raw.decode("utf-8")  # JSON on the wire is UTF-8 (RFC 8259)
        except UnicodeDecodeError as exc:
            dead.append(DeadLetter("not_utf8", str(exc)[:200], msg))
            continue
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            dead.append(DeadLetter("not_json", str(exc)[:200], msg))
            continue
        items, is_array = (doc, True) if isinstance(doc, list) else ([doc], False)
        if is_array and not items:
            dead.append(DeadLetter("empty", "empty JSON array", msg))
            continue
        for i, item in enumerate(items):
            index = i if is_array else None
            if not isinstance(item, dict):
                dead.append(DeadLetter("not_a_reading", f"expected a JSON object, got {type(item).__name__}", msg, index))
                continue
            try:
                reading = Reading.model_validate(item)
            except ValidationError as exc:
                dead.append(DeadLetter("invalid", _short(exc), msg, index))
                continue
            device_ids.append(reading.device_id)
            groups.append(reading.group)
            ts.append(reading.ts)
            values.append(reading.value)
            seqs.append(-1 if reading.seq is None else reading.seq)
    return DecodedBatch(
        device_ids=device_ids,
        groups=groups,
        ts=np.asarray(ts, dtype=np.float64),
        values=np.asarray(values, dtype=np.float64),
        seq=np.asarray(seqs, dtype=np.int64),
        dead_letters=dead,
        messages=count,
    )
