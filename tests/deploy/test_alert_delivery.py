"""Alert delivery end to end, with real programs on loopback, all started and stopped here:

    simulated readings -> Kafka (the session broker) -> `python -m monitor run --metrics.group-labels`
    -> /metrics -> Prometheus (the real rules file) -> Alertmanager (the real routing tree and
    inhibition) -> a webhook receiver (an http.server in a thread of this test)

The fleet is the simulator's `demo` scenario (4 groups of 10 devices, 600 one-minute samples): one
device lies with a bias in one group, a set of three colludes in another. Its event times are real:
the run is shifted by whole days (which changes nothing in the simulated signal) so that its last
reading is at most a day old. A fleet's readings arrive over time: the test sends the first 100
minutes, waits until Prometheus has scraped every group's series once (the per-group counters start
at 0, so the first alert of a group is an increase), then sends the rest at once.

Within DELIVERY_SECONDS (30 s) of the last reading being produced, the webhook must have received:
  * on /security (severity critical, kind collusion): PoisonMonitorColludingSet naming the colluders'
    group;
  * on /operators: PoisonMonitorLyingDevice (kind device, type bias) and PoisonMonitorSuspiciousDevice
    (naming the device) for the lying device's group;
and no device alert of the colluders' group: Alertmanager holds those as inhibited by the collusion
alert of the same group (checked in its API), while the other group's device alerts go out, which
shows the inhibition is per group (without group labels it would silence every device alert).
Every notification names a group, and only the two attacked groups. The `clean` scenario, through
the same programs, makes no notification reach the webhook within the same DELIVERY_SECONDS.

Test-only changes to the deployed configuration, and why: Prometheus scrapes and evaluates every
second (15 s in deploy/); every `for:` of the rules is rewritten to FOR_IN_TEST (2 s) in the test's
copy, since waiting out the real ones (1 to 15 min) would take the test far past two minutes; the
receivers' URLs point to the test's webhook. Routes, grouping, group_wait (10 s for operators, 0 s
for collusion) and inhibition are the real ones. Both tests: about 85 s, the broker's start included.

    python -m pytest tests/deploy/test_alert_delivery.py -v

Skips only if the prometheus or alertmanager binary is missing (scripts/setup.sh installs them).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from monitor.metrics import ALERT_TYPES
from simulators import FleetSimulator, preset
from tests.kafka.harness import Monitor, Topics, free_port, produce, reading_messages, total

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DELIVERY_SECONDS = 30.0   # last reading produced -> notification at the webhook (and the clean run's silence)
FOR_IN_TEST = "2s"        # every rule's `for:` in the test's copy of the rules
N_RULES = sum(len(g["rules"]) for g in yaml.safe_load(
    (DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml").read_text())["groups"])
WARM_SAMPLES = 100        # sent first: clean minutes before any attack starts (bias at 200, collusion at 300)
SAMPLES = 600


def binary(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    pytest.skip(f"{' or '.join(names)} not found on PATH (scripts/setup.sh installs prometheus and "
                "prometheus-alertmanager)")


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def query(prom: str, expr: str) -> list:
    return get(f"{prom}/api/v1/query?query=" + urllib.parse.quote(expr))["data"]["result"]


def wait(predicate, timeout_s: float, what: str, logs=lambda: ""):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if result := predicate():
                return result
        except (OSError, KeyError, IndexError, ValueError):
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{logs()}")


@dataclass
class Webhook:
    """Alertmanager's webhook receiver: records every notification (path = the receiver, time, body)."""

    received: list[tuple[str, float, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                hook.received.append((self.path, time.monotonic(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def alerts(self) -> list[tuple[str, float, dict]]:
        """(receiver path, arrival, alert) for every firing alert of every notification so far."""
        return [(path, at, a) for path, at, body in list(self.received) for a in body["alerts"] if a["status"] == "firing"]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def started(cmd: list[str], log: Path, ready_url: str, what: str) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out)
    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        return urllib.request.urlopen(ready_url, timeout=2).status == 200

    try:
        wait(ready, 60, f"{what} to be ready", lambda: log.read_text()[-3000:])
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def alertmanager_config(webhook: str) -> dict:
    """deploy/alertmanager/alertmanager.yml with every receiver's URL sent to the test's webhook (same path)."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = urllib.parse.urlsplit(hook["url"])._replace(netloc=urllib.parse.urlsplit(webhook).netloc).geturl()
    return config


def rules_copy() -> str:
    """The real rules file, every `for:` shortened to FOR_IN_TEST."""
    text = (DEPLOY / "prometheus" / "rules" / "poison-monitor.rules.yml").read_text()
    text, n = re.subn(r"(?m)^(\s+for:\s*)\S+\s*$", rf"\g<1>{FOR_IN_TEST}", text)
    assert n >= 5, "the rules' for: durations were not found"
    return text


def prometheus_config(rules: Path, monitor_port: int, alertmanager_port: int) -> dict:
    """deploy/prometheus/prometheus.yml: every second, the test's rules copy, monitor and Alertmanager."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    (am,) = config["alerting"]["alertmanagers"]
    am["static_configs"] = [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "poison-monitor"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{monitor_port}"]}]
    return config


@dataclass
class Stack:
    monitor: Monitor
    prometheus: str
    alertmanager: str
    webhook: Webhook
    logs: dict[str, Path]

    def tails(self) -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-2500:]}" for name, path in self.logs.items() if path.exists())


@contextmanager
def stack(bootstrap: str, work: Path):
    """Webhook, Alertmanager, the monitor (per-group labels on), then Prometheus; stopped in reverse."""
    prom_bin = binary("prometheus")
    am_bin = binary("prometheus-alertmanager", "alertmanager")
    with ExitStack() as stack_:
        webhook = Webhook()
        stack_.callback(webhook.close)
        am_port, prom_port = free_port(), free_port()
        (work / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(webhook.base), sort_keys=False))
        logs = {"alertmanager": work / "alertmanager.log", "prometheus": work / "prometheus.log"}
        am = started([am_bin, f"--config.file={work / 'alertmanager.yml'}", f"--storage.path={work / 'am-data'}",
                      f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                     logs["alertmanager"], f"http://127.0.0.1:{am_port}/-/ready", "alertmanager")
        stack_.callback(stop, am)
        monitor = Monitor(bootstrap, Topics.fresh(bootstrap), work,
                          ["--metrics.group-labels", "--metrics.max-groups", "10"]).start()
        stack_.callback(lambda: monitor.proc.poll() is None and monitor.stop())
        logs["monitor"] = monitor.log
        monitor.wait_for(lambda m: total(m, "poison_monitor_kafka_connected") == 1, 60, "the monitor to reach Kafka")
        (work / "rules.yml").write_text(rules_copy())
        (work / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(work / "rules.yml", monitor.port, am_port)))
        prom = started([prom_bin, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'prom-data'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}"],
                       logs["prometheus"], f"http://127.0.0.1:{prom_port}/-/ready", "prometheus")
        stack_.callback(stop, prom)
        yield Stack(monitor, f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}", webhook, logs)


def fleet(name: str) -> FleetSimulator:
    """The preset with real event times: shifted by whole days, its last reading at most a day old."""
    base = preset(name, samples=SAMPLES)
    days = math.floor((time.time() - base.start_ts - SAMPLES * base.interval_seconds) / 86400)
    return FleetSimulator(preset(name, samples=SAMPLES, start_ts=base.start_ts + days * 86400), seed=0)


def send(s: Stack, sim: FleetSimulator) -> float:
    """Sends the warm-up minutes, waits for Prometheus to have the groups' series, sends the rest;
    returns when the last reading was produced (monotonic)."""
    messages = reading_messages(sim)
    cut = sim.scenario.start_ts + WARM_SAMPLES * sim.scenario.interval_seconds
    warm = [m for m in messages if json.loads(m[1])["ts"] < cut]
    rest = messages[len(warm):]
    assert warm + rest == messages  # the simulator sends in time order
    produce(s.monitor.bootstrap, s.monitor.topics.readings, warm)
    n_groups = len(sim.groups)
    wait(lambda: query(s.prometheus, "count(poison_monitor_group_alerts_total)")[0]["value"][1]
         == str(len(ALERT_TYPES) * n_groups),
         60, "Prometheus to scrape every group's alert counters", s.tails)
    produce(s.monitor.bootstrap, s.monitor.topics.readings, rest)
    sent = time.monotonic()
    s.monitor.wait_for(lambda m: total(m, "poison_monitor_readings_total") >= len(messages), 60, "every reading")
    return sent


def rules_healthy(s: Stack) -> None:
    rules = [r for g in get(f"{s.prometheus}/api/v1/rules")["data"]["groups"] for r in g["rules"]]
    assert len(rules) == N_RULES and all(r["health"] == "ok" for r in rules), \
        [(r["name"], r["health"], r.get("lastError")) for r in rules if r["health"] != "ok"]


def test_an_attack_reaches_the_webhook_naming_the_group_and_kind(kafka_broker, tmp_path):
    sim = fleet("demo")
    truth = [r for r in sim.labels() if r["status"] == "attack"]
    colluding = {r["group"] for r in truth if r["type"] == "collusion"}
    (liar,) = [r for r in truth if r["type"] == "bias"]
    (colluding_group,) = colluding
    assert liar["group"] != colluding_group  # the scenario puts them in two groups (seed 0)

    with stack(kafka_broker.bootstrap_servers, tmp_path) as s:
        sent = send(s, sim)

        def delivered(path: str, **labels) -> list:
            return [(at, a) for p, at, a in s.webhook.alerts()
                    if p == path and all(a["labels"].get(k) == v for k, v in labels.items())]

        expected = {
            "collusion to security": lambda: delivered("/security", alertname="PoisonMonitorColludingSet",
                                                       kind="collusion", severity="critical", group=colluding_group),
            "lying device to operators": lambda: delivered("/operators", alertname="PoisonMonitorLyingDevice",
                                                           kind="device", type="bias", group=liar["group"]),
            "suspicious device to operators": lambda: delivered("/operators", alertname="PoisonMonitorSuspiciousDevice",
                                                                kind="device", group=liar["group"],
                                                                device=liar["device_id"]),
        }
        wait(lambda: all(check() for check in expected.values()), DELIVERY_SECONDS + 5,
             f"the notifications {list(expected)}; received: {s.webhook.received}", s.tails)
        for what, check in expected.items():
            first = min(at for at, _ in check()) - sent
            assert first <= DELIVERY_SECONDS, f"{what} took {first:.1f} s"

        # the colluders' own device alerts are active in Alertmanager but inhibited, per group
        def inhibited() -> list:
            alerts = get(f"{s.alertmanager}/api/v2/alerts?inhibited=true&silenced=false")
            return [a for a in alerts if a["labels"].get("kind") == "device" and a["labels"].get("group") == colluding_group
                    and a["status"]["inhibitedBy"]]
        wait(inhibited, 15, "the colluding group's device alerts to show as inhibited", s.tails)
        time.sleep(12)  # past the operators' group_wait (10 s) for anything still pending
        rules_healthy(s)

    alerts = s.webhook.alerts()
    assert not [a for _, _, a in alerts if a["labels"].get("kind") == "device"
                and a["labels"].get("group") == colluding_group], "a device alert of the colluding group got through"
    assert {a["labels"].get("group") for _, _, a in alerts} <= {colluding_group, liar["group"]}, \
        "a notification about an honest group, or without a group"
    assert {path for path, _, _ in alerts} <= {"/security", "/operators"}  # nothing about the monitor's own health


def test_a_clean_fleet_sends_nothing(kafka_broker, tmp_path):
    sim = fleet("clean")
    with stack(kafka_broker.bootstrap_servers, tmp_path) as s:
        send(s, sim)
        time.sleep(DELIVERY_SECONDS)
        assert total(s.monitor.metrics(), "poison_monitor_alerts_total") == 0
        rules_healthy(s)
        assert query(s.prometheus, 'ALERTS{alertstate="firing"}') == []
        assert s.webhook.received == [], s.webhook.received
