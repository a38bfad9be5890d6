"""``poison-monitor demo``: the simulated fleet and the monitor in one process, in memory."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from monitor.feed import feed
from monitor.ingest.files import FileSink
from monitor.ingest.memory import MemorySink, MemorySource
from monitor.metrics import Metrics
from monitor.service import Service


class _Tee:
    """Sends results to several sinks."""

    def __init__(self, *sinks) -> None:
        self.sinks = [s for s in sinks if s is not None]

    def alerts(self, alerts) -> None:
        for s in self.sinks:
            s.alerts(alerts)

    def dead_letters(self, letters) -> None:
        for s in self.sinks:
            s.dead_letters(letters)

    def flush(self) -> None:
        for s in self.sinks:
            s.flush()

    def close(self) -> None:
        for s in self.sinks:
            s.close()


def _view(service: Service, sim, memory: MemorySink, url: str | None) -> Group:
    t = service.totals
    p = service.pipeline
    head = Table.grid(padding=(0, 2))
    clock = (datetime.fromtimestamp(t.last_event_ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
             if t.last_event_ts > float("-inf") else "-")
    header = (f"[b]iot-poison-monitor demo[/b]  scenario={sim.scenario.name} seed={sim.seed}  event time {clock}  "
              f"readings={t.readings:,}  windows={t.windows:,}  alerts={t.alerts}  dead letters={t.dead_letters}"
              + (f"  metrics={url}" if url else ""))
    head.add_row(header)
    groups = Table(title="fleet", expand=False)
    for col in ("group", "devices", "firing", "colluding set"):
        groups.add_column(col)
    firing_by_group: Counter[str] = Counter()
    sets: dict[str, str] = {}
    if p is not None:
        reg = p.registry
        for d in range(reg.n_devices):
            if p.devices.firing[d]:
                firing_by_group[reg.group_names[int(reg.device_group[d])]] += 1
        for s in p.collusion.active():
            sets[reg.group_names[s.group]] = ", ".join(sorted(reg.device_names[m] for m in s.members))
        for g, name in enumerate(reg.group_names):
            groups.add_row(name, str(reg.group_size(g)), str(firing_by_group.get(name, 0)), sets.get(name, ""))
    alerts = Table(title="latest alerts")
    for col in ("state", "kind", "type", "group", "devices", "score"):
        alerts.add_column(col)
    for a in memory.alert_log[-12:]:
        colour = "red" if a.state == "firing" else "green"
        alerts.add_row(f"[{colour}]{a.state}[/{colour}]", a.kind, a.type, a.group, ", ".join(a.devices)[:60],
                       f"{a.score:.1f}")
    return Group(head, groups, alerts)


def _scorecard(sim, alerts) -> Table:
    """What the simulator's ground truth says about the alerts raised."""
    labels = {(r["group"], r["device_id"]): r for r in sim.labels()}
    named: dict[tuple[str, str], set[str]] = {}
    for a in alerts:
        if a.state == "firing" and a.kind in ("device", "collusion"):
            for d in a.devices:
                named.setdefault((a.group, d), set()).add(a.type)
    table = Table(title="ground truth vs alerts")
    for col in ("device", "truth", "alerted as"):
        table.add_column(col)
    false = 0
    for key, lab in labels.items():
        if lab["status"] != "honest":
            table.add_row(key[1], f"{lab['status']}: {lab['type']}", ", ".join(sorted(named.get(key, ()))) or "[red]missed[/red]")
        elif key in named:
            false += 1
            table.add_row(key[1], "honest", "[red]" + ", ".join(sorted(named[key])) + "[/red]")
    table.caption = f"{false} honest device(s) alerted on"
    return table


def run_demo(opts) -> None:
    sim = opts.simulator()
    metrics = Metrics.from_settings(opts.metrics)
    from monitor.cli import _metrics_server, _setup_logging, _signals

    live_view = opts.live and sys.stdout.isatty()
    _setup_logging("WARNING" if live_view else opts.log_level)
    server = _metrics_server(opts, metrics)
    source = MemorySource()
    memory = MemorySink()
    sink = _Tee(memory, FileSink(opts.alerts_out) if opts.alerts_out else None)
    stop = threading.Event()
    feeder = threading.Thread(
        target=lambda: (feed(sim, lambda k, v: source.put(v, k), rate=opts.rate, duration=opts.duration,
                             stop=stop.is_set), source.close_input()),
        name="simulator", daemon=True)
    console = Console()
    last = [0.0]

    def on_step(service: Service, result) -> None:
        if live is not None and time.monotonic() - last[0] > 0.25:
            last[0] = time.monotonic()
            live.update(_view(service, sim, memory, server.url if server else None))

    service = Service(opts.detection, source, sink, metrics, poll_timeout_s=0.2, on_step=on_step,
                      top_k=opts.metrics.top_k)
    _signals(lambda: (stop.set(), service.stop()))
    live = Live(console=console, refresh_per_second=4) if live_view else None
    feeder.start()
    try:
        if live is not None:
            with live:
                service.run(opts.duration)
                live.update(_view(service, sim, memory, server.url if server else None))
        else:
            service.run(opts.duration)
    finally:
        stop.set()
        sink.close()
        if server:
            server.close()
    t = service.totals
    console.print(f"{t.readings:,} readings, {t.windows:,} windows, {t.alerts} alert events, "
                  f"{t.dead_letters} dead letters")
    console.print(_scorecard(sim, memory.alert_log))
