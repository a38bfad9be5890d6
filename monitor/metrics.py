"""Prometheus metrics: the only module that imports prometheus_client.

Cardinality is bounded whatever the devices send: labels are alert kinds and
types, dead-letter reasons and outcomes (fixed small sets). A device label
appears only on the `metrics.top_k` most suspicious devices, and a group label
only on those and, when `metrics.group_labels` is on, on the per-group series
of at most `metrics.max_groups` groups (the first seen; the others are summed
under ``group="_other"``). Per-device detail goes to the alerts topic.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__
from monitor.collusion import OUTCOMES
from monitor.config import MetricsSettings

PREFIX = "poison_monitor"
KINDS = ("device", "collusion", "learner", "input", "consensus")
TYPES = ("bias", "drift", "stuck", "noise", "replay", "spike", "restart", "collusion", "poisoning", "uncertain",
         "relearned", "sybil", "regression", "other")
disable_created_metrics()  # the _created series double every counter for no use here

REASONS = ("oversized", "empty", "not_utf8", "not_json", "not_a_reading", "invalid")
#: the (kind, type) pairs the pipeline raises: their counters start at 0, so that increase() and rate()
#: see an alert even when it is the first of its kind (a counter born at 1 shows no increase)
ALERT_TYPES = (("device", "bias"), ("device", "drift"), ("device", "stuck"), ("device", "noise"),
               ("device", "replay"), ("device", "spike"), ("collusion", "collusion"), ("learner", "poisoning"),
               ("learner", "regression"), ("input", "sybil"), ("consensus", "uncertain"),
               ("consensus", "relearned"))
TRUST_STATES = ("trusted", "suspect", "quarantined")
#: the group label of every group beyond metrics.max_groups (and of a group that calls itself so)
OTHER_GROUP = "_other"


def _kind_type(kind: str, type_: str) -> tuple[str, str]:
    return kind if kind in KINDS else "input", type_ if type_ in TYPES else "other"


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


class GroupLabels:
    """Which groups get their own ``group`` label: the first ``max_groups`` groups the monitor sees, in
    the order it first sees them (first come, first served), each keeping its label for the life of the
    process (stable: a label never moves to another group). Every later group, and a group literally
    named ``_other``, is folded into ``group="_other"``, so however many group ids the devices invent,
    there are at most ``max_groups + 1`` label values.

    >>> labels = GroupLabels(2)
    >>> labels.sync(["hall-a", "_other", "hall-b", "hall-c"])
    >>> [labels.label(g) for g in ("hall-a", "hall-b", "hall-c", "_other")], labels.folded
    (['hall-a', 'hall-b', '_other', '_other'], 2)
    """

    def __init__(self, max_groups: int) -> None:
        if max_groups < 1:
            raise ValueError("max_groups must be at least 1")
        self.max_groups = max_groups
        self.names: list[str] = []        # labelled groups, in the order first seen
        self.index: list[int] = []        # ... their positions in the sequence given to sync()
        self._own: set[str] = set()
        self._seen = 0                    # how much of that sequence has been considered
        self.folded = 0                   # groups summed under _other

    def sync(self, names: Sequence[str]) -> None:
        """``names``: every group known so far, in the order first seen (it only ever grows at the end,
        like the pipeline registry's ``group_names``)."""
        while self._seen < len(names) and len(self.names) < self.max_groups:
            name = names[self._seen]
            if name != OTHER_GROUP:
                self.names.append(name)
                self.index.append(self._seen)
                self._own.add(name)
            self._seen += 1
        self.folded = len(names) - len(self.names)

    def label(self, name: str) -> str:
        return name if name in self._own else OTHER_GROUP


class GroupSeries(Collector):
    """Per-group series (opt-in, ``metrics.group_labels``), built at scrape time from the snapshot the
    service takes after each batch; one label value per group of `GroupLabels` plus ``_other``.

    Per labelled group: its consensus and the plain mean of its readings in its last scored window (no
    series while uncertain), 1 while its consensus is uncertain, its usual spread, devices by trust
    state, active colluding sets and their members, the learner divergence, and a counter of the alerts
    raised by kind and type (every known kind and type from 0). Under ``_other``: the sums of the counts
    (devices, sets, members, uncertain groups, alerts); values that do not add up (consensus, mean,
    spread, divergence) are not exported for it.
    """

    def __init__(self, max_groups: int) -> None:
        self.labels = GroupLabels(max_groups)
        self._lock = threading.Lock()
        self._alerts: dict[tuple[str, str, str], int] = {}  # (group label, kind, type) -> alerts raised
        self._view: dict[str, np.ndarray] = {}               # per labelled group, then _other last
        self._view_names: list[str] = []                     # ... their labels
        self._last = np.zeros((0, 2))                        # per labelled group: consensus, plain mean

    def sync(self, names: Sequence[str]) -> None:
        """New groups get their label (call before counting a batch's alerts)."""
        with self._lock:
            self.labels.sync(names)

    def alert(self, group: str, kind: str, type_: str) -> None:
        key = (self.labels.label(group), *_kind_type(kind, type_))
        with self._lock:
            self._alerts[key] = self._alerts.get(key, 0) + 1

    def update(self, view: dict[str, np.ndarray], window_groups: Sequence[int] = (),
               consensus: Sequence[float] = (), plain_mean: Sequence[float] = ()) -> None:
        """The snapshot after a batch. ``view``: arrays per group index (``Pipeline.group_view``);
        ``window_groups``, ``consensus``, ``plain_mean``: the group windows scored in the batch, in order
        (the last of each group wins; consensus NaN when uncertain)."""
        with self._lock:
            idx = np.asarray(self.labels.index, dtype=np.int64)
            folded = self.labels.folded > 0
            out = {}
            for key, arr in view.items():
                own = arr[idx]
                if folded:
                    other = arr.sum() - own.sum() if key not in ("spread", "divergence") else np.nan
                    own = np.append(own.astype(float), other)
                out[key] = own
            last = np.full((len(idx), 2), np.nan)
            last[: len(self._last)] = self._last[: len(idx)]
            if len(window_groups):
                where = np.full(int(max(np.max(window_groups), idx.max(initial=-1))) + 1, -1)
                where[idx] = np.arange(len(idx))
                pos = where[np.asarray(window_groups, dtype=np.int64)]
                values = np.column_stack([np.asarray(consensus, float), np.asarray(plain_mean, float)])
                last[pos[pos >= 0]] = values[pos >= 0]  # assigned in order: the last window of a group stays
            self._view, self._last = out, last
            self._view_names = list(self.labels.names[: len(idx)]) + ([OTHER_GROUP] if folded else [])

    def collect(self):
        with self._lock:  # the snapshot's labels (groups labelled since are in the next one)
            names, view, last, alerts = self._view_names, self._view, self._last, dict(self._alerts)
            counted = list(self.labels.names)
            if self.labels.folded or any(key[0] == OTHER_GROUP for key in alerts):
                counted.append(OTHER_GROUP)
        n_own = len(last)

        def gauge(name: str, doc: str, key: str, own_only: bool = False) -> GaugeMetricFamily:
            fam = GaugeMetricFamily(f"{PREFIX}_group_{name}", doc, labels=["group"])
            for i, value in enumerate(view.get(key, ())):
                if (i < n_own or not own_only) and np.isfinite(value):
                    fam.add_metric([names[i]], float(value))
            return fam

        for name, doc, col in (("consensus", "The group's consensus in its last scored window (none while "
                                "uncertain); not for group=_other", 0),
                               ("reading_mean", "Plain mean of every reading of the group in its last scored window, "
                                "trusted or not (what an unguarded average reports); not for group=_other", 1)):
            fam = GaugeMetricFamily(f"{PREFIX}_group_{name}", doc, labels=["group"])
            for i in range(n_own):
                if np.isfinite(last[i, col]):
                    fam.add_metric([names[i]], float(last[i, col]))
            yield fam
        yield gauge("consensus_uncertain", "1 while the group's consensus is uncertain (for group=_other: how many "
                    "of the folded groups are)", "uncertain")
        yield gauge("spread", "The group's usual spread across its trusted devices (sensor units, smoothed); "
                    "not for group=_other", "spread", own_only=True)
        devices = GaugeMetricFamily(f"{PREFIX}_group_devices", "Devices of the group by trust state (trusted, "
                                    "suspect: in alarm, quarantined: out of the consensus until re-admitted)",
                                    labels=["group", "state"])
        for state in TRUST_STATES:
            for i, value in enumerate(view.get(state, ())):
                devices.add_metric([names[i], state], float(value))
        yield devices
        yield gauge("collusion_sets", "Colluding sets currently active in the group", "collusion_sets")
        yield gauge("colluding_devices", "Members of the group's active colluding sets", "colluding_devices")
        yield gauge("learner_divergence_ratio", "Guarded/shadow learner divergence of the group, in group spreads; "
                    "not for group=_other", "divergence", own_only=True)
        counter = CounterMetricFamily(f"{PREFIX}_group_alerts", "Alerts raised (firing events) in the group, by kind "
                                      "and type", labels=["group", "kind", "type"])
        extra = sorted({(k, t) for _, k, t in alerts} - set(ALERT_TYPES))
        for name in counted:
            for kind, type_ in ALERT_TYPES + tuple(extra):
                counter.add_metric([name, kind, type_], float(alerts.get((name, kind, type_), 0)))
        yield counter


class Metrics:
    """All of the monitor's metrics, on their own registry (so tests can build fresh ones)."""

    def __init__(self, registry: CollectorRegistry | None = None, group_labels: bool = False,
                 max_groups: int = 100) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.suspicious = SuspiciousDevices()
        r.register(self.suspicious)
        #: the per-group series, or None when metrics.group_labels is off
        self.per_group = GroupSeries(max_groups) if group_labels else None
        if self.per_group is not None:
            r.register(self.per_group)
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
        self.collusion_holds = Counter(f"{PREFIX}_collusion_holds_total", "Sets the collusion scan took out of the "
                                       "consensus and held, and what became of them (outcome: nominated, alerted, "
                                       "faded, unshifted, heterogeneous, outsiders, relearned)", ["outcome"], registry=r)
        for outcome in OUTCOMES:
            self.collusion_holds.labels(outcome)  # every outcome exported from the start (0)
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
        self.group_labels = Gauge(f"{PREFIX}_group_labels_enabled",
                                  "1 when the per-group series (poison_monitor_group_*) are exported", registry=r)
        self.folded_groups = Gauge(f"{PREFIX}_folded_groups", "Groups beyond metrics.max_groups, whose per-group "
                                   "series are summed under group=_other", registry=r)
        self.state_restored = Gauge(f"{PREFIX}_state_restored", "1 when the detection state was restored from "
                                    "a checkpoint at start (state.path)", registry=r)
        self.checkpoint_failures = Counter(f"{PREFIX}_checkpoint_failures_total",
                                           "Failed attempts to write the state checkpoint", registry=r)
        self.checkpoint_bytes = Gauge(f"{PREFIX}_checkpoint_size_bytes", "Size of the last checkpoint written "
                                      "(gzip JSON)", registry=r)
        self.checkpoint_seconds = Gauge(f"{PREFIX}_checkpoint_duration_seconds", "Time the last checkpoint took "
                                        "to serialise, write and sync", registry=r)
        self.checkpoint_time = Gauge(f"{PREFIX}_checkpoint_last_success_timestamp_seconds", "When the last "
                                     "checkpoint was written (Unix time; 0: none yet)", registry=r)
        Info(f"{PREFIX}_build", "Build information", registry=r).info({"version": __version__})
        self.group_labels.set(1 if self.per_group is not None else 0)
        for reason in REASONS:
            self.dead_letters.labels(reason)
        for outcome in ("accepted", "late"):
            self.readings.labels(outcome)
        for kind, type_ in ALERT_TYPES:
            for state in ("firing", "resolved"):
                self.alerts.labels(kind, type_, state)

    @classmethod
    def from_settings(cls, settings: MetricsSettings, registry: CollectorRegistry | None = None) -> "Metrics":
        return cls(registry, group_labels=settings.group_labels, max_groups=settings.max_groups)

    def alert(self, kind: str, type_: str, state: str, group: str | None = None) -> None:
        """Count one alert event (and, with per-group series, a raised one in its group)."""
        self.alerts.labels(*_kind_type(kind, type_), state).inc()
        if self.per_group is not None and group is not None and state == "firing":
            self.per_group.alert(group, kind, type_)

    def groups_seen(self, names: Sequence[str]) -> None:
        """Every group known, in the order first seen: new ones get their label (before their alerts count)."""
        if self.per_group is not None:
            self.per_group.sync(names)
            self.folded_groups.set(self.per_group.labels.folded)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the access log stays out of the monitor's log
        pass


Probe = Callable[[], tuple[bool, dict]]


class MetricsServer:
    """Serves ``/metrics`` (the registry), ``/healthz`` (the process is alive and its loop turns) and
    ``/readyz`` (state restored, partitions assigned, caught up) in a daemon thread. The probes must not
    touch the Kafka client (not thread-safe): the service's probes read a snapshot its loop takes."""

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
