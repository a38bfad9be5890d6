"""On the Beijing replay: honest stations' alarms counted as events and as time, and the longest collusion alerts.

    python benchmarks/beijing_alarm_time.py [--seed 1001] [--detection.option value ...]

Replays the Beijing data with the scoreboard's injected attacks (injection ``--seed``, 1001 as on
the scoreboard) and prints, for the honest stations, the alarm events per device-day (the
scoreboard's false-alarm rate: device alerts, and each member of a collusion alert) and the share
of their time in any alarm, per group, then the five longest collusion alerts. The two can
disagree: one false collusion alert that never resolves counts once per member however long it
holds them, and while it holds half a group out the group's other alarms stay open rather than
end and fire anew. About a minute.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from _replay import BEIJING_SEED, beijing, detection_settings
from monitor.evaluation.runner import alert_intervals, run_monitor
from monitor.evaluation.scoring import truth_from_labels


def covered(spans: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) spans."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=BEIJING_SEED, help="seed of the injected attacks")
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    _, data = beijing(args.seed)
    alerts, *_ = run_monitor(data, settings)
    t0, t_end = float(np.nanmin(data.ts)), float(np.nanmax(data.ts)) + data.interval
    truth = truth_from_labels(data.labels, t0, t_end)
    alarms, _ = alert_intervals(alerts, t_end)
    honest = [a for a in alarms if a.device in truth.honest_days]
    spans, events = defaultdict(list), defaultdict(int)
    for a in honest:
        spans[(a.group, a.device)].append((a.start, min(a.end, t_end)))
        events[a.group] += 1
    group_of = {d: data.groups[g] for d, g in zip(data.device_ids, data.device_group)}
    days = defaultdict(float)
    for d, v in truth.honest_days.items():
        days[group_of[d]] += v
    print(f"{'group':6s} {'alarm events':>12s} {'per device-day':>14s} {'share of time in alarm':>23s}")
    all_events = all_time = 0.0
    for group in data.groups:
        t = sum(covered(s) for (g, _), s in spans.items() if g == group) / 86400.0
        all_events, all_time = all_events + events[group], all_time + t
        if days[group]:
            print(f"{group:6s} {events[group]:12d} {events[group] / days[group]:14.3f} {t / days[group]:23.3f}")
    total = sum(days.values())
    print(f"{'all':6s} {int(all_events):12d} {all_events / total:14.3f} {all_time / total:23.3f}")
    longest: dict[str, list] = {}
    for a in honest:
        if a.type == "collusion":
            longest.setdefault(a.key, [a.group, 0.0, 0])
            longest[a.key][1] = max(longest[a.key][1], (min(a.end, t_end) - a.start) / data.interval)
            longest[a.key][2] += 1
    print("longest collusion alerts naming honest stations (group, samples, honest members):")
    for group, samples, n in sorted(longest.values(), key=lambda x: -x[1])[:5]:
        print(f"  {group:6s} {samples:8.0f} {n:3d}")


if __name__ == "__main__":
    main()
