"""Issue 4's bars 2-5 read from a run over the bars suite (many events of each bar's kind), misses counted.

    poison-monitor evaluate --scenarios scenarios/bars --seeds 3001,3002,3003 --baselines median_zscore \\
        --no-sweep --beijing none --out docs/bars
    python benchmarks/bars.py docs/bars

The scoreboard's medians are over the events detected and the reporting set
holds two to six events of each bar's kind; here a missed event counts as
never detected (a median is "never" when half the events or more were missed),
and the suite (``scenarios/bars``) holds 48 to 84 of each, in groups of 20
devices, the bars' default. Delays are in samples from the attack's start; a
ramp's is also given as the level it had reached (rate times delay).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


def median_with_misses(delays: list[float], events: int) -> float:
    """Median delay of ``events`` events of which ``delays`` were detected; misses count as never (inf).

    >>> median_with_misses([10.0, 30.0], 3), median_with_misses([10.0], 3)
    (30.0, inf)
    """
    return float(np.median(sorted(delays) + [math.inf] * (events - len(delays)))) if events else math.nan


def _fmt(x: float) -> str:
    return "never" if math.isinf(x) else f"{x:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="the --out directory of the evaluate command above (or its results.json)")
    path = Path(ap.parse_args().results)
    r = json.loads((path / "results.json" if path.is_dir() else path).read_text())
    interval = r["overall"]["interval_s"]
    print(f"runs: {r['overall']['runs']} ({', '.join(r['scenarios'])}; seeds {r['seeds']})")
    for name, sc in sorted(r["per_scenario"].items()):
        pm = sc["detectors"]["poison-monitor"]
        print(f"\n{name}: false alarms per honest device-day {pm['fa_per_device_day_honest']:.3f} "
              f"({7 * pm['fa_per_device_day_honest']:.2f} a device-week; bar 3: at most 1)")
        for kind, v in sorted(pm["per_type"].items()):
            delays = [d / interval for d in v["delays_s"]]
            med = median_with_misses(delays, v["events"])
            line = f"  {kind}: {v['events']} events, {len(delays)} detected, median delay {_fmt(med)} samples"
            if kind.startswith("drift") and not math.isinf(med):
                rate = float(kind.split()[1].removesuffix("σ/sample"))
                line += f" (the ramp at {rate * med:.3f}σ)"
            print(line)
        iso = sc["collusion"].get("isolation", {}).get("per_set") or []
        if iso:
            n = next(run["devices"] // run["groups"] for run in r["runs"] if run["name"] == name)  # group size
            by: dict[int, list[tuple[float, float]]] = {}
            for x in iso:
                by.setdefault(x["members"], []).append(tuple(
                    math.inf if x.get(k) is None else x[k] / interval for k in ("delay_s", "delay_any_s")))
            for m, d in sorted(by.items()):
                named, anyway = ([x[i] for x in d] for i in (0, 1))
                print(f"  sets of {m} of {n} ({m / n:.0%}): {len(d)} sets, half the members isolated as set members "
                      f"after a median {_fmt(float(np.median(named)))} samples, {sum(x <= 60 for x in named)} of "
                      f"{len(d)} within 60; out of the consensus for any reason (own alarms too) after "
                      f"{_fmt(float(np.median(anyway)))}, {sum(x <= 60 for x in anyway)} within 60")
            for i, what in ((0, "as set members"), (1, "for any reason")):
                alld = [x[i] for v in by.values() for x in v]
                print(f"  all {len(alld)} sets, {what}: median {_fmt(float(np.median(alld)))} samples "
                      f"(bar 2: at most 60)")
        cons = sc.get("consensus", {}).get("poison-monitor")
        if cons and iso:
            print(f"  consensus bias from the attacks' start {cons['bias_sigma']:.3f}σ, worst group "
                  f"{cons['bias_sigma_max']:.3f}σ (median {sc['consensus']['median']['bias_sigma']:.3f}σ; "
                  f"bar 2: at most 0.05σ)")
        c = sc["collusion"]
        line = f"  collusion alerts {c['collusion_alerts']}, false {c['false_collusion_alerts']}"
        if c["sets"]:
            b = c["bar"]
            line += (f"; sets {b['sets']}, found {b['sets_found']}, event F1 {b['f1']:.3f}, member Jaccard "
                     f"{b['jaccard_mean']:.3f} (bar 5: 0.9 and 0.8)")
        print(line)


if __name__ == "__main__":
    main()
