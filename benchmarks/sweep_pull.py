"""Where the consensus bias of an in-spread sweep cell comes from, on seeds other than the scoreboard's.

    python benchmarks/sweep_pull.py [--fraction 0.3] [--offset 0.5] [--seeds 7,8] [--detection.option value ...]

Runs one cell of the collusion sweep (``simulators.sweep_scenarios``: 4 groups of
20, one colluding set per group from sample 300) and its clean twin, and prints
per group: the monitor's consensus bias against the twin (sigmas, mean over the
attack), how many of the set's members the monitor names and when half were out
of the consensus, and the mean difference of the honest devices' learned
offsets between the attacked run and the twin at the end (sigmas). The scoreboard's
sweep uses seed 2001; the defaults here are other seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import detection_settings
from monitor.evaluation.runner import _recorded, evaluate, run_monitor
from simulators import FleetSimulator, sweep_scenarios, to_eval_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=0.3)
    ap.add_argument("--offset", type=float, default=0.5)
    ap.add_argument("--seeds", default="7,8")
    args, rest = ap.parse_known_args()
    (scenario,) = sweep_scenarios(fractions=(args.fraction,), offsets=(args.offset,))
    settings = detection_settings(rest)
    biases, halves = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        sim = FleetSimulator(scenario, seed=seed)
        data, clean = to_eval_data(sim), to_eval_data(sim.clean_twin())
        iso = {r["group"]: r for r in evaluate(data, settings, clean=clean, device_baselines={},
                                               consensus_baselines={})["collusion"]["isolation"]["per_set"]}
        _, rec, pipe, _, _ = run_monitor(data, settings)
        _, crec, cpipe, _, _ = run_monitor(clean, settings)
        ours, twin = _recorded(rec, pipe, data, "consensus"), _recorded(crec, cpipe, clean, "consensus")
        liars = {r["device_id"] for r in data.labels if r["status"] == "attack"}
        sigma = dict(zip(data.device_ids, data.sigma))
        start = int(np.nanmin(data.ts) // data.interval) + scenario.attacks[0].start
        for g, name in enumerate(data.groups):
            ws = [w for w in sorted(set(ours[g]) & set(twin[g])) if w >= start]
            bias = np.nanmean([ours[g][w] - twin[g][w] for w in ws]) / np.median(data.sigma[data.device_group == g])
            drift = [(pipe.devices.offset(np.array([pipe.registry.device_names.index(d)]))[0]
                      * pipe._unit(np.array([pipe.registry.group_names.index(name)]))[0]
                      - cpipe.devices.offset(np.array([cpipe.registry.device_names.index(d)]))[0]
                      * cpipe._unit(np.array([cpipe.registry.group_names.index(name)]))[0]) / sigma[d]
                     for d in np.asarray(data.device_ids)[data.device_group == g] if d not in liars]
            gi = pipe.registry.group_names.index(name)
            st = next((a for a in pipe.collusion.active() if a.group == gi), None)
            named = len({pipe.registry.device_names[m] for m in st.members} & liars) if st else 0
            r = iso.get(name, {})
            half = None if r.get("delay_s") is None else round(r["delay_s"] / data.interval)
            biases.append(bias)
            halves.append(np.nan if half is None else half)
            print(f"seed {seed} {name}: bias {bias:+.3f} sigma; set of {r.get('members')}, {named} named at the end, "
                  f"half out after {half} samples; honest offsets moved {np.mean(drift):+.3f} sigma against the twin")

    print(f"{len(biases)} groups: mean bias {np.mean(biases):+.3f} sigma, mean size {np.mean(np.abs(biases)):.3f} sigma; "
          f"half of the set out after a median {np.nanmedian(halves):.1f} samples "
          f"({int(np.sum(np.array(halves) > 60))} over 60, {int(np.sum(np.isnan(halves)))} never)")


if __name__ == "__main__":
    main()
