"""Prometheus and Alertmanager configuration, checked by the real tools (promtool, amtool)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml"


def tool(name: str) -> str:
    return shutil.which(name) or pytest.fail(f"{name} not found (scripts/setup.sh installs prometheus and "
                                             "prometheus-alertmanager)")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)


def test_prometheus_config_and_rules_are_valid():
    r = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    n = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert n >= 12 and f"SUCCESS: {n} rules found" in r.stdout


def test_every_rule_has_severity_kind_summary_and_runbook():
    import yaml

    doc = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml").read_text())
    rules = [r for g in doc["groups"] for r in g["rules"]]
    for r in rules:
        assert {"severity", "kind"} <= set(r["labels"]), r["alert"]
        assert {"summary", "runbook"} <= set(r["annotations"]), r["alert"]


def test_rule_unit_tests_pass():
    r = run(tool("promtool"), "test", "rules", "tests/poison-monitor.rules.test.yml", cwd=DEPLOY / "prometheus")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


def test_alertmanager_config_is_valid():
    r = run(tool("amtool"), "check-config", "alertmanager.yml", cwd=DEPLOY / "alertmanager")
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("labels, receiver", [
    (["severity=critical", "kind=collusion"], "security"),
    (["severity=warning", "kind=device"], "operators"),
    (["severity=critical", "kind=monitor", "alertname=PoisonMonitorDown"], "platform"),
    (["severity=warning", "kind=learner"], "operators"),
    (["severity=critical", "kind=collusion", "group=site-02/temperature", "alertname=PoisonMonitorColludingSet"],
     "security"),
    (["severity=warning", "kind=device", "group=site-03/temperature", "device=site-03-dev-006",
      "alertname=PoisonMonitorSuspiciousDevice"], "operators"),
    (["severity=warning", "kind=input", "group=site-01/temperature", "alertname=PoisonMonitorNewDeviceBurst"],
     "operators"),
    (["severity=warning", "kind=monitor", "alertname=PoisonMonitorGroupLabelsFolded"], "platform"),
])
def test_alerts_route_by_severity_and_kind(labels, receiver):
    r = run(tool("amtool"), "config", "routes", "test", "--config.file=alertmanager.yml",
            f"--verify.receivers={receiver}", *labels, cwd=DEPLOY / "alertmanager")
    assert r.returncode == 0, r.stdout + r.stderr
