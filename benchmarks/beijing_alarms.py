"""On the Beijing replay: how many stations each group has in alarm, by alarm type.

    python benchmarks/beijing_alarms.py [--clean] [--detection.option value ...]

Replays the Beijing data with the scoreboard's injected attacks (seed 1001; with ``--clean``,
without them) and prints, per group and device alert type, the alerts raised and the average
number of stations in that alarm at any hour (device-hours in alarm over the replay's hours).
Honest stations in alarm are out of the consensus; with too few left it is uncertain. About a
minute.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

import numpy as np

from _replay import beijing, detection_settings
from monitor.evaluation.runner import run_monitor


def main() -> None:
    rest = sys.argv[1:]
    clean_only = "--clean" in rest
    rest = [a for a in rest if a != "--clean"]
    settings = detection_settings(rest)
    clean, attacked = beijing()
    data = clean if clean_only else attacked
    alerts, *_ = run_monitor(data, settings)
    t_end = float(np.nanmax(data.ts)) + data.interval
    since: dict[str, tuple[float, tuple[str, str]]] = {}
    hours: dict[tuple[str, str], float] = defaultdict(float)
    raised: Counter = Counter()
    for a in alerts:
        if a.kind != "device":
            continue
        key = (a.group, a.type)
        if a.state == "firing" and a.alert_id not in since:
            since[a.alert_id] = (a.ts, key)
            raised[key] += 1
        elif a.state != "firing" and a.alert_id in since:
            t, k = since.pop(a.alert_id)
            hours[k] += (a.ts - t) / data.interval
    for t, k in since.values():  # still open at the end
        hours[k] += (t_end - t) / data.interval
    size = Counter(data.groups[g] for g in data.device_group)
    print(f"{'group':6s} {'stations':>8s} {'type':7s} {'alerts':>6s} {'stations in alarm (mean)':>25s}")
    for group in data.groups:
        for typ in sorted({t for g, t in hours if g == group}):
            k = (group, typ)
            print(f"{group:6s} {size[group]:8d} {typ:7s} {raised[k]:6d} {hours[k] / data.n_samples:25.2f}")


if __name__ == "__main__":
    main()
