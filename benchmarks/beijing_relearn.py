"""How often the monitor learns a Beijing group afresh, and when its collusion alerts come.

On the Beijing replay (with the injected attacks of scenarios/beijing-attacks.yaml, seed 1001)
this prints, per group, the first window where most of its devices were out of the consensus
long enough to be relearned and how many times that happened, then how many collusion alerts
(firing events, new or grown) came how long after the group's last relearning (or the start),
and the device alerts by type with the pairs most often said to copy one another (replay).

Per group it also prints the relearnings in each year of the replay (and the first of each) and the device alarms that
lasted 30 days or more (the alarm stands and nothing of the device is learned: see the README on
the two states a group settles in).

    python benchmarks/beijing_relearn.py [--detection.option value ...]
"""

from __future__ import annotations

import collections
import sys

import numpy as np

from _replay import detection_settings
from monitor.evaluation.beijing import default_path, to_eval_data
from monitor.evaluation.inject import inject
from monitor.evaluation.runner import run_monitor

BINS = (0, 120, 240, 480, 1000, 10 ** 9)
YEAR, LONG = 8760, 720  # hourly windows: a year, 30 days


def main() -> None:
    path = default_path()
    if not path.exists():
        raise SystemExit(f"{path} not found: the Beijing data set lies in ../shared/data beside the project")
    data = inject(to_eval_data(path), "scenarios/beijing-attacks.yaml", seed=1001)
    alerts, *_ = run_monitor(data, detection_settings(sys.argv[1:]))
    t0, W = float(np.nanmin(data.ts)), data.interval
    hours = data.values.shape[1]
    relearns: dict[str, list[int]] = collections.defaultdict(list)
    last: dict[str, float] = collections.defaultdict(lambda: t0)
    since = []
    opened: dict[str, tuple[str, float]] = {}
    long: collections.Counter = collections.Counter()
    for a in alerts:
        if a.type == "relearned" and a.state == "firing":
            relearns[a.group].append(round((a.ts - t0) / W))
            last[a.group] = a.ts
        elif a.kind == "collusion" and a.state == "firing":
            since.append((a.ts - last[a.group]) / W)
        elif a.kind == "device" and a.state == "firing":
            opened.setdefault(a.alert_id, (a.group, a.ts))
        elif a.kind == "device" and a.alert_id in opened:
            g, t = opened.pop(a.alert_id)
            long[g] += (a.ts - t) / W >= LONG
    for g, t in opened.values():  # still open at the end
        long[g] += t0 + hours * W - t >= LONG * W
    print(f"{hours:,} hourly windows")
    for g in data.groups:
        r = relearns.get(g, [])
        year = np.asarray(r, int) // YEAR
        n_years = (hours + YEAR - 1) // YEAR
        firsts = [int(min(np.asarray(r)[year == y])) if (year == y).any() else "-" for y in range(n_years)]
        print(f"{g}: relearned {len(r)} times (by year: {np.bincount(year, minlength=n_years).tolist()}, "
              f"the first of each year at window {firsts}); device alarms of 30 days or more: {long[g]}")
    counts = np.histogram(since, BINS)[0]
    print("collusion alerts by windows since the group's last relearning (or the start):",
          ", ".join(f"{lo}-{hi if hi < 10 ** 9 else '...'}: {c}" for lo, hi, c in zip(BINS, BINS[1:], counts)))
    device = [a for a in alerts if a.kind == "device" and a.state == "firing"]
    print("device alerts by type:", dict(collections.Counter(a.type for a in device).most_common()))
    copies = collections.Counter((a.devices[0], a.evidence["copies"]) for a in device if "copies" in a.evidence)
    print(f"alerts naming a copied device: {sum(copies.values())}; most frequent (device, copied): "
          + ", ".join(f"{d} <- {c}: {n}" for (d, c), n in copies.most_common(6)))


if __name__ == "__main__":
    main()
