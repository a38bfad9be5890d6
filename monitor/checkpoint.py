"""Checkpoints of the detection state: one gzip JSON file per process, written atomically (never pickle).

A checkpoint holds the pipeline's `Pipeline.state_dict`, the Kafka offsets that
state covers (topic, partition -> next offset), the detection settings it was
learned with and a format version. See docs/checkpoint.md for when it is
written and how it is ordered with the offsets committed to Kafka.

>>> ck = Checkpoint(state={"version": 1, "window_seconds": 60.0}, offsets={("readings", 0): 42})
>>> Checkpoint.from_document(json.loads(json.dumps(ck.to_document())), "x").offsets
{('readings', 0): 42}
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import json
import os
import tempfile
import time
import zlib
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from monitor import __version__
from monitor.config import DetectionSettings

FORMAT = "iot-poison-monitor/checkpoint"
VERSION = 1
#: detection settings that shape the saved arrays: a state learned with other values cannot be restored
#: (``window_seconds`` is checked on its own: the state carries the window it was learned with)
COMPAT = ("replay_k", "replay_capacity")

Offsets = dict[tuple[str, int], int]


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"checkpoint {self.path}: {reason}")


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    state: dict                                       # Pipeline.state_dict()
    offsets: Offsets = field(default_factory=dict)    # next offset per (topic, partition) the state covers
    detection: dict = field(default_factory=dict)     # the detection settings the state was learned with
    source: dict = field(default_factory=dict)        # where the offsets are from: topic, group_id
    written_at: float = 0.0                           # Unix time

    @property
    def window_seconds(self) -> float:
        return float(self.state["window_seconds"])

    def to_document(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "monitor_version": __version__, "written_at": self.written_at,
                "window_seconds": self.state.get("window_seconds"), "source": self.source,
                "offsets": [{"topic": t, "partition": p, "offset": o} for (t, p), o in sorted(self.offsets.items())],
                "detection": self.detection, "pipeline": self.state}

    @classmethod
    def from_document(cls, doc: object, path: str | Path) -> "Checkpoint":
        """Validate a parsed document (raises `CheckpointError` naming ``path``)."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise CheckpointError(path, f"is not a poison-monitor checkpoint (no \"format\": \"{FORMAT}\")")
        if doc.get("version") != VERSION:
            raise CheckpointError(path, f"has format version {doc.get('version')!r}; this monitor "
                                        f"({__version__}) reads version {VERSION}")
        state = doc.get("pipeline")
        if not isinstance(state, dict) or not _number(state.get("window_seconds")):
            raise CheckpointError(path, "has no pipeline state with a window length")
        offsets: Offsets = {}
        rows = doc.get("offsets", [])
        if not isinstance(rows, list):
            raise CheckpointError(path, "has malformed offsets (not a list)")
        for row in rows:
            if not (isinstance(row, dict) and isinstance(row.get("topic"), str) and _count(row.get("partition"))
                    and _count(row.get("offset"))):
                raise CheckpointError(path, f"has a malformed offset entry {row!r}")
            offsets[(row["topic"], row["partition"])] = row["offset"]
        detection, source = doc.get("detection", {}), doc.get("source", {})
        if not isinstance(detection, dict) or not isinstance(source, dict):
            raise CheckpointError(path, "has malformed detection settings or source")
        written = doc.get("written_at", 0.0)
        return cls(state=state, offsets=offsets, detection=detection, source=source,
                   written_at=float(written) if _number(written) else 0.0)


def _number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


# ---------------------------------------------------------------------- files
def encode(ck: Checkpoint) -> bytes:
    """The file's bytes: compact JSON, gzip (deterministic: no time stamp in the gzip header)."""
    return gzip.compress(json.dumps(ck.to_document(), separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def write(path: str | Path, ck: Checkpoint) -> int:
    """Write atomically: a temporary file in the same directory, fsync, rename over ``path``, fsync the
    directory. If anything fails the previous file is left as it was. Returns the size in bytes."""
    path = Path(path)
    data = encode(ck)  # serialise first: a state that cannot be encoded never touches the disk
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return len(data)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: str | Path) -> Checkpoint:
    """Parse and validate a checkpoint file (raises `CheckpointError` naming it and the reason)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CheckpointError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not raw:
        raise CheckpointError(path, "is empty")
    try:
        text = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CheckpointError(path, f"is not a complete gzip file ({exc or type(exc).__name__}); "
                                    "it may be truncated or not a checkpoint") from None
    try:
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(path, f"does not hold valid JSON ({exc})") from None
    return Checkpoint.from_document(doc, path)


@functools.cache
def pipeline_state_version() -> int:
    """The state version the current `Pipeline` writes."""
    from monitor.pipeline import Pipeline

    return Pipeline(DetectionSettings(), window_seconds=60.0).state_dict()["version"]


def check(ck: Checkpoint, path: str | Path, detection: DetectionSettings, topic: str | None = None) -> list[str]:
    """Raise `CheckpointError` if the state cannot be restored under these settings; returns the detection
    settings that changed in ways it can live with (``"name: old -> new"``)."""
    if ck.state.get("version") != pipeline_state_version():
        raise CheckpointError(path, f"holds pipeline state version {ck.state.get('version')!r}; this monitor "
                                    f"restores version {pipeline_state_version()}")
    if detection.window_seconds is not None and detection.window_seconds != ck.window_seconds:
        raise CheckpointError(path, f"was learned with {ck.window_seconds:g}-second windows, but "
                                    f"detection.window_seconds is {detection.window_seconds:g}")
    for key in COMPAT:
        if key in ck.detection and ck.detection[key] != getattr(detection, key):
            raise CheckpointError(path, f"was learned with detection.{key} = {ck.detection[key]!r}, but it is now "
                                        f"{getattr(detection, key)!r}")
    other = sorted({t for t, _ in ck.offsets} - {topic}) if topic is not None else []
    if other:
        raise CheckpointError(path, f"covers topic {', '.join(map(repr, other))}, but kafka.topic is {topic!r}")
    now = detection.model_dump()
    return [f"{k}: {ck.detection[k]!r} -> {v!r}" for k, v in now.items() if k in ck.detection and ck.detection[k] != v]


@dataclass
class Restored:
    """A checkpoint read, checked and rebuilt into a pipeline (which may share lists with
    ``checkpoint.state``: do not reuse that state once the pipeline has run)."""

    path: Path
    checkpoint: Checkpoint
    pipeline: object  # monitor.pipeline.Pipeline
    changed: list[str]


def restore(path: str | Path, detection: DetectionSettings, topic: str | None = None) -> Restored:
    """Read, check and rebuild the pipeline (`Pipeline.from_state`); raises `CheckpointError`."""
    from monitor.pipeline import Pipeline

    ck = read(path)
    changed = check(ck, path, detection, topic)
    try:
        pipeline = Pipeline.from_state(detection, ck.state)
    except Exception as exc:  # a structurally broken state: one clear line, never a traceback
        raise CheckpointError(path, f"holds a pipeline state that does not load ({type(exc).__name__}: {exc})") \
            from None
    return Restored(Path(path), ck, pipeline, changed)


def discard(path: str | Path) -> Path | None:
    """Move an existing checkpoint aside (to ``<path>.discarded``); returns where, or None if there was none."""
    path = Path(path)
    if not path.exists():
        return None
    aside = path.with_name(path.name + ".discarded")
    os.replace(path, aside)
    return aside


def lock(path: str | Path) -> IO:
    """Hold ``<path>.lock`` for the life of the process, so two monitors never share one checkpoint.

    Also checks that the directory exists and is writable, and removes temporary files a crash in the
    middle of a write left behind. Keep the returned file open."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CheckpointError(path, f"its directory {str(path.parent)!r} does not exist")
    lock_path = path.with_name(path.name + ".lock")
    try:
        fh = open(lock_path, "a+")
    except OSError as exc:
        raise CheckpointError(path, f"cannot create {lock_path.name} in {str(path.parent)!r} "
                                    f"({exc.strerror or exc})") from None
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        owner = fh.read().strip() or "?"
        fh.close()
        raise CheckpointError(path, f"is in use by another monitor (pid {owner}, holding {lock_path.name})") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a crash mid-write; ours to remove now
        with suppress(OSError):
            stale.unlink()
    return fh


def summary(path: str | Path) -> dict:
    """What a checkpoint holds, in numbers (``python -m monitor.checkpoint FILE``)."""
    path = Path(path)
    ck = read(path)
    size = path.stat().st_size
    raw = len(json.dumps(ck.to_document(), separators=(",", ":")))
    registry = ck.state.get("registry", {})
    devices = len(registry.get("devices", []))
    return {"file": str(path), "bytes": size, "json_bytes": raw, "groups": len(registry.get("groups", [])),
            "devices": devices, "bytes_per_device": round(size / devices) if devices else None,
            "json_bytes_per_device": round(raw / devices) if devices else None,
            "window_seconds": ck.window_seconds, "source": ck.source,
            "offsets": {f"{t}:{p}": o for (t, p), o in sorted(ck.offsets.items())},
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ck.written_at))}


if __name__ == "__main__":  # pragma: no cover - a tiny operator's tool
    import sys

    if len(sys.argv) != 2:
        print("usage: python -m monitor.checkpoint FILE", file=sys.stderr)
        raise SystemExit(2)
    try:
        print(json.dumps(summary(sys.argv[1]), indent=2))
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
