"""On the Beijing replay: how large the collusion sets are, and how long nominated sets keep devices out.

    python benchmarks/beijing_holds.py [--clean] [--detection.collusion-penalty union --detection.collusion-threshold 10]

Replays the Beijing data with the scoreboard's injected attacks (seed 1001; with
``--clean``, without them) and prints the collusion alerts by (group, group size,
set size), the nominations by set size, the device-windows that nominated sets
held out of the consensus before their confirmation or drop, the held sets by
outcome (as `poison_monitor_collusion_holds_total` counts them) and the share of
group windows whose consensus was uncertain. The detector's ``nominate`` and
``_confirm`` are wrapped to count; nothing else changes. About a minute.
"""

from __future__ import annotations

import sys
from collections import Counter

from monitor.collusion import OUTCOMES, CollusionDetector
from _replay import beijing, detection_settings
from monitor.evaluation.runner import run_monitor


def main() -> None:
    rest = sys.argv[1:]
    clean_only = "--clean" in rest
    rest = [a for a in rest if a != "--clean"]
    settings = detection_settings(rest)
    nominated, held = Counter(), [0]
    nominate, confirm = CollusionDetector.nominate, CollusionDetector._confirm

    def counting_nominate(self, group, window, nom, **kw):
        nominated[len(nom.members)] += 1
        return nominate(self, group, window, nom, **kw)

    def counting_confirm(self, s, *args):
        held[0] += len(s.members)
        return confirm(self, s, *args)

    CollusionDetector.nominate, CollusionDetector._confirm = counting_nominate, counting_confirm
    outcomes: Counter = Counter()
    drain = CollusionDetector.drain_outcomes

    def counting_drain(self):
        out = drain(self)
        outcomes.update(out)
        return out

    CollusionDetector.drain_outcomes = counting_drain
    clean, attacked = beijing()
    data = clean if clean_only else attacked
    alerts, rec, *_ = run_monitor(data, settings)
    size = Counter(data.groups[g] for g in data.device_group)
    latest = {a.alert_id: a for a in alerts if a.kind == "collusion" and a.state == "firing"}
    by = Counter((a.group, size[a.group], len(a.devices)) for a in latest.values())
    print(f"{len(latest)} collusion alerts (group, group size, set size: count):")
    for k, v in sorted(by.items()):
        print(f"  {k}: {v}")
    print(f"{sum(nominated.values())} nominations by set size: {dict(sorted(nominated.items()))}")
    print(f"device-windows held out of the consensus before confirmation or drop: {held[0]:,}")
    print("held sets by outcome: " + ", ".join(f"{k} {outcomes[k]}" for k in OUTCOMES))
    uncertain = sum(1 for c in rec.consensus if c != c)
    print(f"group windows with an uncertain consensus: {uncertain:,} of {len(rec.consensus):,} "
          f"({uncertain / max(len(rec.consensus), 1):.1%})")


if __name__ == "__main__":
    main()
