"""JSON Lines files: a source of readings (one message a line) and a sink for results."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import IO

from monitor.ingest.messages import DeadLetter, RawMessage
from monitor.schema import Alert


class FileSource:
    """Reads a JSONL file of readings; each line is one message (an object or an array).

    Blank lines are skipped. ``batch_size`` lines make one micro-batch.
    """

    def __init__(self, path: str | Path, batch_size: int = 5000) -> None:
        self.path = Path(path)
        self.batch_size = batch_size
        self._fh: IO[bytes] = self.path.open("rb")
        self._line = 0
        self._done = False

    def poll(self, timeout_s: float = 0.0) -> list[RawMessage]:
        out: list[RawMessage] = []
        while len(out) < self.batch_size:
            raw = self._fh.readline()
            if not raw:
                self._done = True
                break
            self._line += 1
            raw = raw.rstrip(b"\r\n")
            if raw.strip():
                out.append(RawMessage(value=raw, topic=str(self.path), offset=self._line))
        return out

    def commit(self) -> None:
        """Nothing to remember for a file."""

    @property
    def exhausted(self) -> bool:
        return self._done

    def lag(self) -> int | None:
        return None

    def close(self) -> None:
        self._fh.close()


def dead_letter_record(letter: DeadLetter) -> dict:
    """A dead letter as a JSON object (raw bytes base64-encoded)."""
    msg = letter.message
    return {
        "reason": letter.reason, "detail": letter.detail, "index": letter.index,
        "source": {"topic": msg.topic, "partition": msg.partition, "offset": msg.offset},
        "key_b64": base64.b64encode(msg.key).decode() if msg.key is not None else None,
        "value_b64": base64.b64encode(msg.value).decode() if msg.value is not None else None,
    }


class FileSink:
    """Appends alerts (and dead letters, if a path is given) as JSON Lines."""

    def __init__(self, alerts_path: str | Path, dead_letters_path: str | Path | None = None) -> None:
        self.alerts_path = Path(alerts_path)
        self.dead_letters_path = Path(dead_letters_path) if dead_letters_path else None
        self._alerts = self.alerts_path.open("w", encoding="utf-8")
        self._dead = self.dead_letters_path.open("w", encoding="utf-8") if self.dead_letters_path else None

    def alerts(self, alerts: list[Alert]) -> None:
        for a in alerts:
            self._alerts.write(a.model_dump_json() + "\n")

    def dead_letters(self, letters: list[DeadLetter]) -> None:
        if self._dead is None:
            return
        for letter in letters:
            self._dead.write(json.dumps(dead_letter_record(letter)) + "\n")

    def flush(self) -> None:
        self._alerts.flush()
        if self._dead:
            self._dead.flush()

    def close(self) -> None:
        self._alerts.close()
        if self._dead:
            self._dead.close()
