"""Where one sweep cell's consensus bias comes from: its course over time, and the learned offsets behind it.

    python benchmarks/sweep_cell.py --fraction 0.3 --offset 0.5 [--seed 2001] [--detection.option value ...]

Runs the monitor on one cell of the consensus sweep (`poison-monitor evaluate`'s, seed 2001 by
default: 4 groups of 20 devices, the set shifting from sample 300 of 1,440) and on its clean
twin, and prints per group:

- the consensus' mean shift against the clean twin's, in the group's honest sigmas, over stretches
  of samples (before and after the set is typically isolated) and over the whole attack, which is
  what the scoreboard's sweep cell averages over groups;
- its collusion alerts (state, onset and time in samples, members);
- at the end, the honest devices' learned offsets minus the clean twin's (mean and median: a
  common shift of the honest offsets is a shift of the consensus level, which no residual can
  show, so it is not learned back once the set is out) and the colluders' (the part of their
  lie their offsets learned before their own alarms or the set froze them).
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import detection_settings
from monitor.evaluation.runner import _group_windows, _recorded, run_monitor
from simulators import FleetSimulator, sweep_scenarios, to_eval_data

STRETCHES = ((300, 360), (360, 400), (400, 500), (500, 700), (700, 1000), (1000, 1440), (300, 1440), (400, 1440))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, required=True, help="colluding fraction of each group, e.g. 0.3")
    ap.add_argument("--offset", type=float, required=True, help="the set's shift in honest sigmas, e.g. 0.5")
    ap.add_argument("--seed", type=int, default=2001)
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    sim = FleetSimulator(sweep_scenarios(fractions=(args.fraction,), offsets=(args.offset,))[0], seed=args.seed)
    data, clean = to_eval_data(sim), to_eval_data(sim.clean_twin())
    alerts, rec, pipe, *_ = run_monitor(data, settings)
    _, crec, cpipe, *_ = run_monitor(clean, settings)
    ours, twin = _recorded(rec, pipe, data, "consensus"), _recorded(crec, cpipe, clean, "consensus")
    t0, w = float(np.nanmin(data.ts)), data.interval
    liars = {lab["device_id"] for lab in data.labels if lab["status"] != "honest"}
    whole = []
    for g, group in enumerate(data.groups):
        idx = np.flatnonzero(data.device_group == g)
        ids = [data.device_ids[i] for i in idx]
        lie = np.array([i in liars for i in ids])
        sigma = float(np.median(data.sigma[idx][~lie]))  # the scoreboard's unit: the honest devices' median sigma
        d = np.array([ours[g].get(int(x), np.nan) - twin[g].get(int(x), np.nan) for x in _group_windows(data, g)])
        d /= sigma
        whole.append(float(np.nanmean(d[300:])))  # from the attack's start, as the scoreboard
        print(group, " ".join(f"[{a},{b}) {np.nanmean(d[a:b]):+.3f}" for a, b in STRETCHES))
        for a in alerts:
            if a.kind == "collusion" and a.group == group:
                print(f"    collusion {a.state} onset {(a.onset_ts - t0) / w:.0f} at {(a.ts - t0) / w:.0f}: "
                      f"{len(a.devices)} devices")
        off = [p.devices.offset(p.registry.index([group] * len(ids), ids)) * p._unit(np.array([p.registry.group(group)]))[0]
               for p in (pipe, cpipe)]  # in value units
        diff = (off[0] - off[1]) / sigma
        print(f"    learned offsets minus the clean twin's (sigmas): honest mean {diff[~lie].mean():+.3f} "
              f"median {np.median(diff[~lie]):+.3f}; colluders {np.round(diff[lie], 3).tolist()}")
    print(f"mean over groups from sample 300: {np.mean(np.abs(whole)):.3f} sigmas")


if __name__ == "__main__":
    main()
