import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.config import DetectionSettings, MetricsSettings
from monitor.ingest.memory import MemorySink, MemorySource
from monitor.collusion import OUTCOMES
from monitor.metrics import ALERT_TYPES, OTHER_GROUP, Metrics
from monitor.service import Service
from tests.helpers import simulate

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def run_demo_through_service(metrics: Metrics | None = None, extra: list[dict] = (),
                             after: int = 0) -> tuple[Metrics, MemorySink]:
    """The demo scenario through a Service; ``extra`` readings are put after the first ``after`` ones."""
    readings = list(simulate("demo", seed=0, samples=500).readings())
    source = MemorySource()
    for r in readings[:after] + list(extra) + readings[after:]:
        source.put(json.dumps(r).encode(), r["group"].encode())
    source.put(b"garbage")
    source.close_input()
    metrics, sink = metrics or Metrics(), MemorySink()
    Service(DetectionSettings(), source, sink, metrics, poll_timeout_s=0.01).run()
    return metrics, sink


def exposition(metrics: Metrics) -> list:
    """Every sample of a scrape."""
    return [s for fam in text_string_to_metric_families(generate_latest(metrics.registry).decode()) for s in fam.samples]


def per_group(samples: list, name: str) -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


@pytest.mark.parametrize("group_labels, max_groups", [(False, 100), (True, 100), (True, 2)])
def test_exposition_passes_promtool_lint(group_labels, max_groups):
    promtool = shutil.which("promtool") or pytest.fail("promtool not found (scripts/setup.sh installs prometheus)")
    metrics, _ = run_demo_through_service(Metrics(group_labels=group_labels, max_groups=max_groups))
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
    # every held set is counted once by what became of it (one still held or alerted at the end)
    holds = {o: get("poison_monitor_collusion_holds_total", {"outcome": o}) for o in OUTCOMES}
    alerts = {a.alert_id for a in firing if a.kind == "collusion"}
    assert holds["alerted"] == len(alerts) >= 1
    assert holds["nominated"] - sum(v for o, v in holds.items() if o != "nominated") in (0, 1)


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


def test_alert_counters_start_at_zero_so_the_first_alert_is_an_increase():
    get = Metrics().registry.get_sample_value
    for kind, type_ in ALERT_TYPES:
        assert get("poison_monitor_alerts_total", {"kind": kind, "type": type_, "state": "firing"}) == 0


def test_no_group_series_unless_asked():
    metrics, _ = run_demo_through_service(Metrics.from_settings(MetricsSettings()))
    samples = exposition(metrics)
    assert not [s for s in samples if s.name.startswith("poison_monitor_group_") and s.name != "poison_monitor_group_labels_enabled"]
    assert per_group(samples, "poison_monitor_group_labels_enabled") == {(): 0}


def test_group_series_agree_with_the_alerts_and_the_fleet_series():
    metrics, sink = run_demo_through_service(Metrics.from_settings(MetricsSettings(group_labels=True)))
    samples = exposition(metrics)
    get = metrics.registry.get_sample_value
    groups = sorted({a.group for a in sink.alert_log} | {f"site-0{i}/temperature" for i in range(4)})
    assert get("poison_monitor_group_labels_enabled") == 1 and get("poison_monitor_folded_groups") == 0
    alerts = per_group(samples, "poison_monitor_group_alerts_total")
    assert {dict(k)["group"] for k in alerts} == set(groups)  # every group from 0, every kind and type
    assert len(alerts) == len(groups) * len(ALERT_TYPES)
    for g in groups:
        for kind, type_ in ALERT_TYPES:
            raised = sum(a.group == g and a.kind == kind and a.type == type_ and a.state == "firing" for a in sink.alert_log)
            assert get("poison_monitor_group_alerts_total", {"group": g, "kind": kind, "type": type_}) == raised
    colluding = {a.group for a in sink.alert_log if a.kind == "collusion"}
    assert len(colluding) == 1
    (attacked,) = colluding
    sets = per_group(samples, "poison_monitor_group_collusion_sets")
    assert sets == {(("group", g),): float(g == attacked) for g in groups}
    assert get("poison_monitor_group_colluding_devices", {"group": attacked}) == 3
    for state in ("trusted", "suspect", "quarantined"):  # the per-group trust states add up to the fleet's
        assert sum(get("poison_monitor_group_devices", {"group": g, "state": state}) for g in groups) == \
            get("poison_monitor_devices", {"state": state})
    for g in groups:  # a certain consensus near the plain mean; the colluders pull the plain mean up
        consensus = get("poison_monitor_group_consensus", {"group": g})
        mean = get("poison_monitor_group_reading_mean", {"group": g})
        spread = get("poison_monitor_group_spread", {"group": g})
        assert get("poison_monitor_group_consensus_uncertain", {"group": g}) == 0
        assert 0 < spread < 1 and abs(mean - consensus) < 3 * spread
    pull = {g: get("poison_monitor_group_reading_mean", {"group": g}) - get("poison_monitor_group_consensus", {"group": g})
            for g in groups}
    assert max(pull, key=pull.get) == attacked


def test_invented_group_ids_cannot_exceed_the_cap():
    """An attacker inventing 600 group ids (after the real four) adds one label value, _other; the
    groups seen first keep their labels, and the series count stays under (max_groups + 1) x a fixed set."""
    invented = [{"device_id": f"x{i}", "group": f"evil-{i:04d}", "ts": 1_767_225_600.0 + 60 * (i % 50), "value": 20.0}
                for i in range(600)]
    invented.append({"device_id": "y", "group": OTHER_GROUP, "ts": 1_767_225_600.0, "value": 1.0})  # a group named so
    metrics, _ = run_demo_through_service(Metrics(group_labels=True, max_groups=5), invented, after=4000)
    samples = exposition(metrics)
    group_series = [s for s in samples if s.name.startswith("poison_monitor_group_") and "group" in s.labels]
    labels = {s.labels["group"] for s in group_series}
    assert labels == {f"site-0{i}/temperature" for i in range(4)} | {"evil-0000", OTHER_GROUP}
    per_label = 2 + 1 + 1 + 3 + 1 + 1 + 1 + len(ALERT_TYPES)  # consensus, mean, uncertain, spread, devices, sets, ...
    assert len(group_series) <= 6 * per_label
    assert len({(s.name, tuple(sorted(s.labels.items()))) for s in samples}) == len(samples)  # no duplicate series
    assert metrics.registry.get_sample_value("poison_monitor_folded_groups") == 600
    assert metrics.registry.get_sample_value("poison_monitor_groups") == 605
    devices = per_group(samples, "poison_monitor_group_devices")
    assert sum(v for k, v in devices.items() if dict(k)["group"] == OTHER_GROUP) == 600  # summed, not dropped
    assert not [s for s in group_series if s.labels["group"] == OTHER_GROUP and s.name in (
        "poison_monitor_group_consensus", "poison_monitor_group_reading_mean", "poison_monitor_group_spread")]


def test_rules_and_dashboards_read_only_metrics_the_monitor_exports():
    """A renamed metric would silently leave a rule or a panel without data: every poison_monitor_*
    name they use is in a scrape of the monitor with group labels on."""
    metrics, _ = run_demo_through_service(Metrics(group_labels=True))
    exported = {s.name for s in exposition(metrics)}
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml").read_text())
    texts = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    for path in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        d = json.loads(path.read_text())
        texts += [t["expr"] for p in d["panels"] for t in p["targets"]]
        texts += [v["query"]["query"] for v in d.get("templating", {}).get("list", [])]
    used = {name for text in texts for name in re.findall(r"poison_monitor_\w+", text)}
    assert used and used <= exported, used - exported


def test_every_data_rule_names_the_group_with_group_labels_and_falls_back_without():
    doc = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"] if r["labels"]["kind"] in ("device", "collusion", "consensus",
                                                                                    "learner", "input")]
    for r in rules:
        if r["alert"] in ("PoisonMonitorDeadLettering", "PoisonMonitorSuspiciousDevice"):
            continue  # about the stream as a whole / named by device and group in both modes
        assert "poison_monitor_group_" in r["expr"] and re.search(r"by \(group\b|^poison_monitor_group_", r["expr"]), r["alert"]
        assert "unless on() (poison_monitor_group_labels_enabled == 1)" in r["expr"], r["alert"]
