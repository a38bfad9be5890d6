import shutil
import subprocess

import pytest
from prometheus_client import generate_latest

from monitor.config import DetectionSettings
from monitor.ingest.memory import MemorySink, MemorySource
from monitor.metrics import Metrics
from monitor.service import Service
from tests.helpers import simulate


def run_demo_through_service() -> tuple[Metrics, MemorySink]:
    sim = simulate("demo", seed=0, samples=500)
    source = MemorySource()
    for r in sim.readings():
        source.put(__import__("json").dumps(r).encode(), r["group"].encode())
    source.put(b"garbage")
    source.close_input()
    metrics, sink = Metrics(), MemorySink()
    Service(DetectionSettings(), source, sink, metrics, poll_timeout_s=0.01).run()
    return metrics, sink


def test_exposition_passes_promtool_lint():
    promtool = shutil.which("promtool") or pytest.fail("promtool not found (scripts/setup.sh installs prometheus)")
    metrics, _ = run_demo_through_service()
    text = generate_latest(metrics.registry)
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == b"" and proc.stderr == b"", proc.stdout + proc.stderr


def test_counters_agree_with_what_the_service_emitted():
    metrics, sink = run_demo_through_service()
    get = metrics.registry.get_sample_value
    assert get("poison_monitor_messages_total") == 40 * 500 + 1
    assert get("poison_monitor_readings_total", {"outcome": "accepted"}) == 40 * 500
    assert get("poison_monitor_dead_letters_total", {"reason": "not_json"}) == 1
    firing = [a for a in sink.alert_log if a.state == "firing"]
    assert sum(get("poison_monitor_alerts_total", {"kind": a.kind, "type": a.type, "state": "firing"}) or 0
               for a in {(a.kind, a.type): a for a in firing}.values()) == len(firing)
    states = {s: get("poison_monitor_devices", {"state": s}) for s in ("trusted", "suspect", "quarantined")}
    assert sum(states.values()) == 40 and states["suspect"] + states["quarantined"] >= 4
    assert get("poison_monitor_collusion_sets") == 1


def test_top_k_suspicious_devices_are_bounded_and_named():
    import urllib.request

    from monitor.metrics import MetricsServer

    metrics, sink = run_demo_through_service()
    rows = metrics.suspicious.rows
    assert 0 < len(rows) <= 10 and rows == sorted(rows, key=lambda r: -r[2])
    attackers = {d for a in sink.alert_log if a.kind in ("device", "collusion") for d in a.devices}
    assert {r[0] for r in rows[:4]} == attackers  # the four liars of the demo scenario rank first
    server = MetricsServer(metrics, "127.0.0.1", 0, ready=lambda: (False, {"lag": 12}))
    try:
        text = urllib.request.urlopen(server.url, timeout=5).read().decode()
        series = [line for line in text.splitlines() if line.startswith("poison_monitor_suspicious_device_score{")]
        assert len(series) == len(rows) and f'device="{rows[0][0]}"' in series[0]
        assert urllib.request.urlopen(server.url.replace("/metrics", "/healthz"), timeout=5).status == 200
        try:
            urllib.request.urlopen(server.url.replace("/metrics", "/readyz"), timeout=5)
            raise AssertionError("readyz should fail")
        except urllib.error.HTTPError as err:
            assert err.code == 503 and b'"lag": 12' in err.read()
    finally:
        server.close()
