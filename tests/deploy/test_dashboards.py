"""Every Grafana panel's query, run against a real Prometheus scraping a real monitor during an attack.

The monitor runs `demo` (the simulated fleet with a lying device and a colluding set, in memory) and
serves /metrics; Prometheus (Debian's, started here on loopback) scrapes it every second. Each query
must parse and return data, and the panels marked as showing the attack must show it (non-zero).
"""

from __future__ import annotations

import json
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
                             "--metrics.port", str(mport)], cwd=ROOT, stdout=subprocess.DEVNULL,
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
                r = get(f"{base}/api/v1/query?query=" + urllib.parse.quote("poison_monitor_collusion_sets > 0"))
                if r["data"]["result"]:
                    break
            except OSError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"no collusion seen by Prometheus within 90 s\n{(work / 'prometheus.log').read_text()[-2000:]}")
        time.sleep(3)  # a few more scrapes for the rate() windows
        yield base
    finally:
        for p in (server, demo):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def panels():
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            yield pytest.param(panel, id=f"{path.stem}:{panel['title']}")


@pytest.mark.parametrize("panel", list(panels()))
def test_panel_query_parses_returns_data_and_shows_the_attack(prometheus_on_attack, panel):
    expr = panel["targets"][0]["expr"]
    r = get(f"{prometheus_on_attack}/api/v1/query?query=" + urllib.parse.quote(expr))
    assert r["status"] == "success", r
    result = r["data"]["result"]
    assert result, f"no data for {expr}"
    if panel["description"] == "shows the attack":
        assert max(float(s["value"][1]) for s in result) > 0, f"the attack is not visible in {expr}"


def test_dashboards_are_valid_grafana_json():
    assert len(DASHBOARDS) == 3
    uids = set()
    for path in DASHBOARDS:
        d = json.loads(path.read_text())
        assert d["uid"] not in uids and d["title"] and d["panels"]
        uids.add(d["uid"])
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            assert p["datasource"]["uid"] == "prometheus" and p["targets"][0]["expr"]
