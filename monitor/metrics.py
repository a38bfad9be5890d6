"""Prometheus metrics: the only module that imports prometheus_client.

Cardinality is bounded whatever the devices send: labels are alert kinds and
types, dead-letter reasons and outcomes (fixed small sets), never a device or
a group. Per-device detail goes to the alerts topic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__

PREFIX = "poison_monitor"
KINDS = ("device", "collusion", "learner", "input", "consensus")
TYPES = ("bias", "drift", "stuck", "noise", "replay", "spike", "collusion", "poisoning", "uncertain", "sybil", "regression", "other")
disable_created_metrics()  # the _created series double every counter for no use here

REASONS = ("oversized", "empty", "not_utf8", "not_json", "not_a_reading", "invalid")


class SuspiciousDevices(Collector):
    """The K most suspicious devices, built at scrape time from the last batch's ranking: a bounded
    number of series with device and group labels, whatever ids the devices invent."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float, float]] = []  # (device, group, score, trust)

    def collect(self):
        score = GaugeMetricFamily(f"{PREFIX}_suspicious_device_score",
                                  "The most suspicious devices: their largest detector statistic over its threshold",
                                  labels=["rank", "device", "group"])
        trust = GaugeMetricFamily(f"{PREFIX}_suspicious_device_trust",
                                  "The most suspicious devices: their reputation (0 to 1)",
                                  labels=["rank", "device", "group"])
        for i, (device, group, s, t) in enumerate(list(self.rows), start=1):
            score.add_metric([str(i), device, group], s)
            trust.add_metric([str(i), device, group], t)
        yield score
        yield trust


class Metrics:
    """All of the monitor's metrics, on their own registry (so tests can build fresh ones)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.suspicious = SuspiciousDevices()
        r.register(self.suspicious)
        self.messages = Counter(f"{PREFIX}_messages_total", "Raw messages consumed", registry=r)
        self.readings = Counter(f"{PREFIX}_readings_total", "Valid readings decoded, by outcome in the windows",
                                ["outcome"], registry=r)
        self.dead_letters = Counter(f"{PREFIX}_dead_letters_total", "Messages (or batch elements) dead-lettered, by reason",
                                    ["reason"], registry=r)
        self.alerts = Counter(f"{PREFIX}_alerts_total", "Alert events emitted, by kind, type and state",
                              ["kind", "type", "state"], registry=r)
        self.windows = Counter(f"{PREFIX}_windows_total", "Group windows closed and scored", registry=r)
        self.uncertain_windows = Counter(f"{PREFIX}_uncertain_windows_total",
                                         "Group windows whose consensus was uncertain (too few trusted devices)", registry=r)
        self.batch_seconds = Histogram(f"{PREFIX}_batch_duration_seconds", "Time to process one micro-batch",
                                       buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                       registry=r)
        self.consumer_lag = Gauge(f"{PREFIX}_consumer_lag_messages", "Messages waiting in the assigned partitions",
                                  registry=r)
        self.event_lag = Gauge(f"{PREFIX}_event_time_lag_seconds",
                               "Wall-clock time minus the newest event time seen", registry=r)
        self.devices = Gauge(f"{PREFIX}_devices", "Devices known, by trust state (trusted, suspect: in alarm, "
                             "quarantined: out of the consensus until re-admitted)", ["state"], registry=r)
        self.groups = Gauge(f"{PREFIX}_groups", "Device groups known", registry=r)
        self.collusion_sets = Gauge(f"{PREFIX}_collusion_sets", "Colluding sets currently active", registry=r)
        self.uncertain_groups = Gauge(f"{PREFIX}_uncertain_groups", "Groups whose consensus is currently uncertain",
                                      registry=r)
        self.learner_divergence = Gauge(f"{PREFIX}_learner_divergence_ratio",
                                        "Largest guarded/shadow learner divergence, in group spreads", registry=r)
        self.broker_up = Gauge(f"{PREFIX}_kafka_connected", "1 when the Kafka brokers are reachable", registry=r)
        self.delivery_failures = Counter(f"{PREFIX}_delivery_failures_total",
                                         "Failed attempts to deliver a batch's alerts and dead letters", registry=r)
        Info(f"{PREFIX}_build", "Build information", registry=r).info({"version": __version__})
        for reason in REASONS:
            self.dead_letters.labels(reason)
        for outcome in ("accepted", "late"):
            self.readings.labels(outcome)

    def alert(self, kind: str, type_: str, state: str) -> None:
        self.alerts.labels(kind if kind in KINDS else "input", type_ if type_ in TYPES else "other", state).inc()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the access log stays out of the monitor's log
        pass


Probe = Callable[[], tuple[bool, dict]]


class MetricsServer:
    """Serves ``/metrics`` (the registry), ``/healthz`` (the process is alive and its loop turns) and
    ``/readyz`` (partitions assigned, caught up) in a daemon thread."""

    def __init__(self, metrics: Metrics, host: str, port: int, health: Probe | None = None,
                 ready: Probe | None = None) -> None:
        self.host = host
        metrics_app = make_wsgi_app(metrics.registry)
        probes = {"/healthz": health or (lambda: (True, {})), "/readyz": ready or (lambda: (True, {}))}

        def app(environ, start_response):
            probe = probes.get(environ.get("PATH_INFO", ""))
            if probe is None:
                return metrics_app(environ, start_response)
            ok, detail = probe()
            body = json.dumps({"status": "ok" if ok else "unavailable", **detail}).encode()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        self._server = make_server(host, port, app, server_class=_Server, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
