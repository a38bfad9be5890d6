"""Every Grafana panel's query, run against a real Prometheus scraping a real monitor during an attack.

The monitor runs `demo` (the simulated fleet with a lying device and a colluding set, in memory) with
per-group labels on (`--metrics.group-labels`) and serves /metrics; Prometheus (Debian's, started here
on loopback) scrapes it every second. Each query of every panel must parse and return data, and the
panels marked as showing the attack must show it (non-zero). The per-group dashboard's `$group`
template variable (used as `${group:doublequote}`, so a group id cannot break out of the matcher) is set to
the group Prometheus sees a colluding set in (the attacked group).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def prometheus_on_attack(tmp_path_factory):
    prom = shutil.which("prometheus") or pytest.fail("prometheus not found (scripts/setup.sh installs it)")
    work = tmp_path_factory.mktemp("prom")
    mport, pport = free_port(), free_port()
    demo = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--rate", "40", "--samples", "900", "--no-live",
                             "--metrics.port", str(mport), "--metrics.group-labels"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"scrape_configs:\n  - job_name: poison-monitor\n    static_configs: [{{targets: ['127.0.0.1:{mport}']}}]\n")
    with (work / "prometheus.log").open("wb") as log:  # the child keeps its own descriptor
        server = subprocess.Popen([prom, f"--config.file={work / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{pport}"],
                                  stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{pport}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until the attack is visible in a scraped series
            try:
                r = get(f"{base}/api/v1/query?query=" + urllib.parse.quote("poison_monitor_group_collusion_sets > 0"))
                if r["data"]["result"]:
                    attacked = r["data"]["result"][0]["metric"]["group"]
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"no collusion seen by Prometheus within 90 s\n{(work / 'prometheus.log').read_text()[-2000:]}")
        time.sleep(3)  # a few more scrapes for the rate() windows
        yield base, attacked
    finally:
        for p in (server, demo):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def grafana_group(expr: str, group: str) -> str:
    """What Grafana sends for ``${group:doublequote}``: the value quoted, its double quotes escaped
    (so a group id with a quote cannot break out of the label matcher)."""
    return expr.replace("${group:doublequote}", '"' + group.replace('"', '\\"') + '"')


def panels():
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            yield pytest.param(panel, id=f"{path.stem}:{panel['title']}")


@pytest.mark.parametrize("panel", list(panels()))
def test_panel_query_parses_returns_data_and_shows_the_attack(prometheus_on_attack, panel):
    base, attacked = prometheus_on_attack
    for i, target in enumerate(panel["targets"]):
        expr = grafana_group(target["expr"], attacked)
        r = get(f"{base}/api/v1/query?query=" + urllib.parse.quote(expr))
        assert r["status"] == "success", r
        result = r["data"]["result"]
        assert result, f"no data for {expr}"
        if i == 0 and panel["description"] == "shows the attack":
            assert max(float(s["value"][1]) for s in result) > 0, f"the attack is not visible in {expr}"


def test_group_template_variable_offers_the_attacked_group(prometheus_on_attack):
    base, attacked = prometheus_on_attack
    d = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "group.json").read_text())
    (var,) = d["templating"]["list"]
    metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["query"]["query"]).groups()
    assert var["name"] == label == "group"
    values = get(f"{base}/api/v1/label/{label}/values?" + urllib.parse.urlencode({"match[]": metric}))["data"]
    assert attacked in values and "_other" not in values  # the demo's four groups are under metrics.max_groups
    assert all("group=${group:doublequote}" in t["expr"] for p in d["panels"] for t in p["targets"])


def test_dashboards_are_valid_grafana_json():
    assert len(DASHBOARDS) == 4
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        assert d["uid"] not in uids and d["title"] and d["panels"]
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            assert p["datasource"]["uid"] == "prometheus" and all(t["expr"] for t in p["targets"])
            assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
