"""State checkpoints (monitor/checkpoint.py) with real files, and `replay`/`run` using them as users do."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap

import pytest

from monitor import checkpoint
from monitor.checkpoint import Checkpoint, CheckpointError
from monitor.config import DetectionSettings
from monitor.pipeline import Pipeline
from monitor.schema import Alert
from tests.helpers import batches, key, run_pipeline, simulate
from tests.test_cli import ROOT, cli


@pytest.fixture(scope="module")
def demo():
    sim = simulate("demo", seed=11, samples=700)
    return list(sim.readings())


def half_way(readings: list[dict]) -> tuple[Pipeline, list, int]:
    """A pipeline fed the first half of the readings: (pipeline, its alerts, where the half ends)."""
    half = len(readings) // 2 + 7  # not on a tick boundary: open windows hold readings
    p = Pipeline(DetectionSettings(), window_seconds=60.0)
    alerts = [a for b in batches(readings[:half], 2500) for a in p.process(b).alerts]
    return p, alerts, half


def test_round_trip_resumes_exactly_like_an_uninterrupted_run(demo, tmp_path):
    _, straight = run_pipeline(demo)
    p, first, half = half_way(demo)
    path = tmp_path / "state.json.gz"
    offsets = {("readings", 0): 1234, ("readings", 2): 7}
    size = checkpoint.write(path, Checkpoint(state=p.state_dict(), offsets=offsets,
                                             detection=DetectionSettings().model_dump(),
                                             source={"topic": "readings", "group_id": "g"}, written_at=1.5e9))
    assert size == path.stat().st_size
    doc = json.loads(gzip.decompress(path.read_bytes()))  # plain gzip JSON, readable by any tool
    assert doc["format"] == checkpoint.FORMAT and doc["version"] == checkpoint.VERSION
    assert doc["offsets"] == [{"topic": "readings", "partition": 0, "offset": 1234},
                              {"topic": "readings", "partition": 2, "offset": 7}]
    restored = checkpoint.restore(path, DetectionSettings(), topic="readings")
    assert restored.checkpoint.offsets == offsets and restored.checkpoint.source["group_id"] == "g"
    assert restored.checkpoint.written_at == 1.5e9 and restored.changed == []
    again = tmp_path / "again.json.gz"  # the same bytes for the same state: no time stamp in the gzip header
    checkpoint.write(again, restored.checkpoint)
    assert again.read_bytes() == path.read_bytes()
    second = [a for b in batches(demo[half:], 2500) for a in restored.pipeline.process(b).alerts]
    second += restored.pipeline.flush().alerts
    assert list(map(key, first + second)) == list(map(key, straight)) and straight
    assert [f.name for f in tmp_path.iterdir() if f.name.endswith(".tmp")] == []


def test_a_failed_write_leaves_the_previous_checkpoint(demo, tmp_path):
    """A real failure half-way through the write (the file-size limit, as on a full disk): the old file
    is intact and no temporary file is left behind."""
    p, _, _ = half_way(demo)
    path = tmp_path / "state.json.gz"
    small = Pipeline(DetectionSettings(), window_seconds=60.0)
    checkpoint.write(path, Checkpoint(state=small.state_dict()))
    before = path.read_bytes()
    state_file = tmp_path / "big-state.json"
    state_file.write_text(json.dumps(p.state_dict()))
    assert len(checkpoint.encode(Checkpoint(state=p.state_dict()))) > 4096  # larger than the limit below
    script = textwrap.dedent(f"""
        import json, resource, signal
        from monitor import checkpoint
        state = json.loads(open({str(state_file)!r}).read())
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
        try:
            checkpoint.write({str(path)!r}, checkpoint.Checkpoint(state=state))
        except OSError as exc:
            print("failed", exc.errno)
        else:
            print("written")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("failed"), proc.stdout + proc.stderr
    assert path.read_bytes() == before
    assert sorted(f.name for f in tmp_path.iterdir()) == ["big-state.json", "state.json.gz"]
    assert checkpoint.read(path).window_seconds == 60.0


def _valid(tmp_path, **detection) -> tuple:
    p = Pipeline(DetectionSettings(**detection), window_seconds=60.0)
    ck = Checkpoint(state=p.state_dict(), offsets={("readings", 0): 5},
                    detection=DetectionSettings(**detection).model_dump())
    return ck, checkpoint.encode(ck)


def _gz(doc) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


BAD_FILES = {
    "empty": (lambda ck, raw: b"", "is empty"),
    "truncated": (lambda ck, raw: raw[: len(raw) // 2], "not a complete gzip file"),
    "not gzip": (lambda ck, raw: b'{"format": "x"}', "not a complete gzip file"),
    "not json": (lambda ck, raw: gzip.compress(b"\x00\x01 not json"), "does not hold valid JSON"),
    "a pickle": (lambda ck, raw: gzip.compress(b"\x80\x04\x95\x00"), "does not hold valid JSON"),
    "other json": (lambda ck, raw: _gz({"hello": 1}), "is not a poison-monitor checkpoint"),
    "future format": (lambda ck, raw: _gz({**ck.to_document(), "version": 99}), "format version 99"),
    "no state": (lambda ck, raw: _gz({**ck.to_document(), "pipeline": None}), "no pipeline state"),
    "bad offsets": (lambda ck, raw: _gz({**ck.to_document(), "offsets": [{"topic": "r", "partition": -1}]}),
                    "malformed offset entry"),
    "broken state": (lambda ck, raw: _gz({**ck.to_document(), "pipeline": {"version": 1, "window_seconds": 60}}),
                     "pipeline state that does not load (KeyError"),
    "old state version": (lambda ck, raw: _gz({**ck.to_document(), "pipeline": {**ck.state, "version": 0}}),
                          "pipeline state version 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_corrupt_checkpoints_are_refused_naming_the_file_and_the_reason(tmp_path, case):
    ck, raw = _valid(tmp_path)
    make, reason = BAD_FILES[case]
    path = tmp_path / "state.json.gz"
    path.write_bytes(make(ck, raw))
    with pytest.raises(CheckpointError) as err:
        checkpoint.restore(path, DetectionSettings(), topic="readings")
    assert str(err.value).startswith(f"checkpoint {path}: ") and reason in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("settings, topic, reason", [
    ({"window_seconds": 30.0}, "readings", "was learned with 60-second windows, but detection.window_seconds is 30"),
    ({"replay_capacity": 64}, "readings", "detection.replay_capacity = 128, but it is now 64"),
    ({"replay_k": 5}, "readings", "detection.replay_k = 2, but it is now 5"),
    ({}, "other-topic", "covers topic 'readings', but kafka.topic is 'other-topic'"),
])
def test_incompatible_checkpoints_are_refused(tmp_path, settings, topic, reason):
    ck, raw = _valid(tmp_path)
    path = tmp_path / "state.json.gz"
    path.write_bytes(raw)
    with pytest.raises(CheckpointError, match="^checkpoint .*state.json.gz: ") as err:
        checkpoint.restore(path, DetectionSettings(**settings), topic=topic)
    assert reason in str(err.value)


def test_tuning_changes_are_allowed_and_reported(tmp_path):
    ck, raw = _valid(tmp_path)
    path = tmp_path / "state.json.gz"
    path.write_bytes(raw)
    restored = checkpoint.restore(path, DetectionSettings(cusum_h=12.5, window_seconds=60.0), topic="readings")
    assert restored.changed == ["window_seconds: None -> 60.0", "cusum_h: 11.8 -> 12.5"]


def test_two_monitors_cannot_share_one_checkpoint(tmp_path):
    path = tmp_path / "state.json.gz"
    held = checkpoint.lock(path)
    try:
        with pytest.raises(CheckpointError, match=f"is in use by another monitor \\(pid {os.getpid()}"):
            checkpoint.lock(path)
    finally:
        held.close()
    stale = tmp_path / ".state.json.gz.k2j4x9.tmp"  # as a crash in the middle of a write leaves it
    stale.write_bytes(b"half")
    checkpoint.lock(path).close()  # free again once the first one let go; the stale file is gone
    assert not stale.exists()
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint.lock(tmp_path / "no-such-dir" / "state.json.gz")


def test_replay_continues_from_a_checkpoint_like_one_long_replay(tmp_path):
    """`replay --state.path` twice over a file cut between two ticks gives the alerts of one replay of it."""
    whole, first, second = (tmp_path / n for n in ("whole.jsonl", "first.jsonl", "second.jsonl"))
    assert cli("simulate", "--scenario", "demo", "--samples", "600", "--seed", "2", "--out", str(whole)).returncode == 0
    lines = whole.read_text().splitlines(keepends=True)
    cut = 40 * 320  # after tick 320: the demo's attacks are already under way
    first.write_text("".join(lines[:cut]))
    second.write_text("".join(lines[cut:]))
    state = tmp_path / "state.json.gz"
    outs = []
    for n, part in enumerate((whole, first, second)):
        out = tmp_path / f"alerts-{n}.jsonl"
        extra = ["--state.path", str(state)] if n else []
        r = cli("replay", str(part), "--alerts-out", str(out), *extra)
        assert r.returncode == 0, r.stderr
        outs.append(out.read_text().splitlines())
        if n == 2:
            assert "restored the detection state from" in r.stderr
    def fields(line: str) -> tuple:
        a = Alert.model_validate_json(line)
        return (*key(a), a.score, json.dumps(a.evidence))

    assert outs[0] and sorted(map(fields, outs[1] + outs[2])) == sorted(map(fields, outs[0]))
    assert outs[2]  # alerts of the second part needed the state of the first (no warm-up after the cut)


def test_restored_alerts_match_an_uninterrupted_run_in_every_field():
    readings = list(simulate("demo", seed=2, samples=600).readings())
    _, straight = run_pipeline(readings)
    p = Pipeline(DetectionSettings(), window_seconds=60.0)
    cut = 40 * 320
    first = [a for b in batches(readings[:cut], 4000) for a in p.process(b).alerts]
    q = Pipeline.from_state(DetectionSettings(), json.loads(json.dumps(p.state_dict())))
    second = [a for b in batches(readings[cut:], 4000) for a in q.process(b).alerts] + q.flush().alerts
    assert [a.model_dump() for a in first + second] == [a.model_dump() for a in straight]


def test_run_refuses_a_bad_checkpoint_at_start_without_a_traceback(tmp_path):
    """Before it connects to Kafka, `run` names the file and the reason, and says how to start fresh;
    with --state.discard the file is moved aside and the run goes on (here: to a missing broker)."""
    path = tmp_path / "state.json.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    args = ["run", "--state.path", str(path), "--kafka.bootstrap-servers", "127.0.0.1:9",
            "--kafka.connect-timeout-seconds", "1", "--kafka.connect-retry-seconds", "0.2", "--no-metrics.enabled"]
    r = cli(*args, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    error = [line for line in r.stderr.splitlines() if line.startswith("poison-monitor: error:")]
    assert len(error) == 1 and f"checkpoint {path}: is not a complete gzip file" in error[0]
    assert "--state.discard" in error[0] and "Kafka" not in r.stderr  # refused before touching the brokers
    r = cli(*args, "--state.discard", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "cannot reach Kafka" in r.stderr and "moved the checkpoint" in r.stderr
    assert not path.exists() and (tmp_path / "state.json.gz.discarded").read_bytes().endswith(b"garbage")
    r = cli("run", "--state.path", str(tmp_path / "missing" / "state.json.gz"), "--no-metrics.enabled")
    assert r.returncode == 2 and "option state.path: " in r.stderr and "does not exist" in r.stderr


def test_a_service_survives_a_failing_checkpoint_and_writes_the_next_one(demo, tmp_path, caplog):
    """The checkpoint directory disappears for a while (a real failure): the write is counted and logged,
    the stream goes on, and the next due checkpoint succeeds; the last one holds the whole state."""
    import shutil

    from monitor.ingest.memory import MemorySink, MemorySource
    from monitor.metrics import Metrics
    from monitor.service import Service

    folder = tmp_path / "state"
    folder.mkdir()
    source = MemorySource(max_batch=3000)
    for r in demo:
        source.put(json.dumps(r).encode(), r["group"].encode())
    source.close_input()
    steps = []

    def on_step(service, result) -> None:
        steps.append(service.metrics.registry.get_sample_value("poison_monitor_checkpoint_failures_total"))
        if len(steps) == 2:
            shutil.rmtree(folder)
        elif len(steps) == 4:
            folder.mkdir()

    metrics, sink = Metrics(), MemorySink()
    service = Service(DetectionSettings(window_seconds=60.0), source, sink, metrics, poll_timeout_s=0.01,
                      on_step=on_step, state_path=folder / "state.json.gz", checkpoint_every_s=0.0)
    service.restore(None)
    service.run()
    get = metrics.registry.get_sample_value
    assert get("poison_monitor_checkpoint_failures_total") >= 1 and steps[1] == 0
    assert "could not write the checkpoint" in caplog.text
    assert get("poison_monitor_checkpoint_size_bytes") == (folder / "state.json.gz").stat().st_size
    assert get("poison_monitor_checkpoint_last_success_timestamp_seconds") > 0
    saved = checkpoint.restore(folder / "state.json.gz", DetectionSettings())
    assert saved.pipeline.registry.n_devices == 40 and saved.checkpoint.offsets == {}
    _, straight = run_pipeline(demo)
    assert sorted(map(key, sink.alert_log)) == sorted(map(key, straight))


@pytest.mark.parametrize("before, after", [(0.0, 172800.0), (172800.0, 0.0)])
def test_a_checkpoint_restores_with_the_drift_carry_switched(demo, tmp_path, before, after):
    """A checkpoint written with the drift carry off (the default until session 18) restores with it on,
    its drift learned afresh from zero, and one written with it on restores with it off; the change is
    reported, and the restored pipeline goes on through the rest of the readings."""
    half = len(demo) // 2
    p = Pipeline(DetectionSettings(collusion_drift_seconds=before), window_seconds=60.0)
    for b in batches(demo[:half], 2500):
        p.process(b)
    path = tmp_path / "state.json.gz"
    checkpoint.write(path, Checkpoint(state=p.state_dict(), offsets={("readings", 0): half},
                                      detection=DetectionSettings(collusion_drift_seconds=before).model_dump()))
    restored = checkpoint.restore(path, DetectionSettings(collusion_drift_seconds=after), topic="readings")
    assert restored.changed == [f"collusion_drift_seconds: {before} -> {after}"]
    q = restored.pipeline
    for b in batches(demo[half:], 2500):
        q.process(b)
    q.flush()
    kept = set(q.state_dict()["devices"]) & {"drift", "step2", "behind"}
    assert kept == ({"drift", "step2", "behind"} if after else set())
