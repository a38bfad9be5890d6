"""What the detectors see of each attack: the attacked devices' standardised residual before and after onset.

    python benchmarks/step_response.py --scenarios scenarios/tuning-bars/single-liars.yaml --seeds 0,1,2 [--at 0] [--window 30]

For every single-device attack with a magnitude (a step) or a rate (a ramp),
grouped by kind and strength: the mean and standard deviation of ``z`` over
the 200 windows before onset (an honest device's: about 0 and 1), its mean
over windows ``[onset + at, onset + at + window)``, what the attack alone
would give there in ``z`` (its size in the device's own sigma over the
residual's scale, the ratio printed last: the residual's scale is the
device's own noise plus the consensus' and what the world adds), and the
residual scale over the device's true sigma. A CUSUM with reference ``k``
gains ``z - k`` a window, so a 1σ step read as 0.91 instead of 1 gains 0.41
instead of 0.5. ``--detection.x value`` options go to the detection settings.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from _replay import fleet_args, watching_devices
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated

BEFORE = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--at", type=int, default=0, help="windows after onset where the look starts")
    ap.add_argument("--window", type=int, default=30, help="windows looked at")
    args, scenarios, seeds, settings = fleet_args(ap)
    rows: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for data, _ in simulated(scenarios, seeds):
        index = {n: i for i, n in enumerate(run_monitor(data, settings)[2].registry.device_names)}
        t0 = float(np.nanmin(data.ts))
        watched: dict[int, tuple[str, int, float]] = {}  # device index -> (kind, onset window, size at the look)
        for lab in data.labels:
            p = lab["params"] or {}
            if lab["status"] != "attack" or lab["collusion_set"] or lab["device_id"] not in index:
                continue
            onset = round((lab["start_ts"] - t0) / data.interval)
            if p.get("rate") is not None:
                kind, size = f"{lab['type']} {p['rate']:g}σ/sample", p["rate"] * (args.at + (args.window - 1) / 2)
            elif p.get("magnitude") is not None:
                kind, size = f"{lab['type']} {p['magnitude']:g}σ", p["magnitude"]
            else:
                continue
            watched[index[lab["device_id"]]] = (kind, onset, size)
        if not watched:  # (no single-device step or ramp in this run)
            continue
        seen: dict[int, list[tuple[int, float, float]]] = defaultdict(list)

        def record(_, devices, window, ev):
            for i in np.flatnonzero(np.isin(devices, list(watched))).tolist():
                seen[int(devices[i])].append((int(window[i]), float(ev.z[i]), float(ev.scale[i])))

        with watching_devices(record):
            run_monitor(data, settings)
        sigma = {index[lab["device_id"]]: lab["params"]["sigma"] for lab in data.labels
                 if lab["device_id"] in index and (lab["params"] or {}).get("sigma")}
        first = min(w for v in seen.values() for w, _, _ in v)
        for i, (kind, onset, size) in watched.items():
            w, z, scale = (np.array(c) for c in zip(*seen[i]))
            w = w - first
            pre = (w >= onset - BEFORE) & (w < onset)
            post = (w >= onset + args.at) & (w < onset + args.at + args.window)
            if pre.sum() < 10 or post.sum() < 3 or i not in sigma:
                continue
            ratio = float(scale[pre].mean()) / sigma[i]
            rows[kind].append((z[pre].mean(), z[pre].std(), z[post].mean(), size / ratio, ratio))
    if not rows:
        raise SystemExit("no single-device step or ramp with a magnitude or rate in these scenarios")
    print(f"windows [onset + {args.at}, onset + {args.at + args.window}); before: the {BEFORE} windows before onset")
    for kind, r in sorted(rows.items()):
        a = np.array(r)
        print(f"{kind}: {len(a)} devices; z before {a[:, 0].mean():+.3f} (sd {a[:, 1].mean():.3f}); "
              f"z after {a[:, 2].mean():+.3f} (median {np.median(a[:, 2]):+.3f}), the attack alone {a[:, 3].mean():+.3f}; "
              f"residual scale / own sigma {a[:, 4].mean():.3f}")


if __name__ == "__main__":
    main()
