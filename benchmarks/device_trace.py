"""One device's view of itself, window by window: its residual, both mean CUSUMs and its learned offset.

    python benchmarks/device_trace.py --scenario scenarios/reporting/slow-drift.yaml --seed 1001 --device site-03-dev-001 [--every 20] [--detection.option value ...]

Runs the monitor over a simulated scenario and prints, every ``--every`` windows, the device's
standardised residual ``z`` (against the leave-one-out consensus, less its learned offset), the
larger side of the main and of the slow mean-shift CUSUM (their thresholds in the header), its
learned offset and residual scale (value units), and whether it is in alarm and as what. Then, in
blocks of 250 windows, the mean residual, how far the offset moved and the slow CUSUM's highest; with the
device's ground-truth label (type, start, magnitude in its sigma) printed first, so that a step
the offset learned away before a CUSUM saw it shows. The monitor runs twice: once to learn the
device's index, once to watch it (``DeviceMonitor.update`` is wrapped; nothing else changes).
"""

from __future__ import annotations

import argparse

import numpy as np

from _replay import detection_settings, watching_devices
from monitor.detectors.device import TYPES
from monitor.evaluation.runner import run_monitor
from monitor.evaluation.suite import simulated

BLOCK = 250


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", required=True)
    ap.add_argument("--every", type=int, default=20)
    args, rest = ap.parse_known_args()
    settings = detection_settings(rest)
    data, _ = next(iter(simulated([args.scenario], [args.seed])))
    for lab in data.labels:
        if lab["device_id"] == args.device:
            start = "-" if lab["start_ts"] is None else f"{(lab['start_ts'] - float(np.nanmin(data.ts))) / data.interval:.0f}"
            print(f"{args.device}: {lab['status']} {lab['type'] or ''} from window {start} {lab['params']}")
    names = list(run_monitor(data, settings)[2].registry.device_names)
    if args.device not in names:
        raise SystemExit(f"{args.device} is not a device of {args.scenario}")
    idx = names.index(args.device)
    rows: list[tuple] = []

    def record(mon, devices, window, ev):
        at = np.flatnonzero(devices == idx)
        if len(at):
            j, d = int(at[0]), np.array([idx])
            main_side = max(float(s[0]) for s in mon.cusum.sides(d))
            slow_side = max(float(s[0]) for s in mon.slow.sides(d))
            what = TYPES[mon._type[idx]] if mon._firing[idx] else "-"
            rows.append((int(window[j]), float(ev.z[j]), main_side, slow_side, float(mon.offset(d)[0]),
                         float(ev.scale[j]), what))

    with watching_devices(record):
        pipe = run_monitor(data, settings)[2]
    w0 = rows[0][0]
    print(f"main CUSUM threshold {pipe.devices.cusum.h}, slow CUSUM threshold {pipe.devices.slow.h}")
    print("window      z   main   slow      offset     scale  alarm")
    for w, z, m, s, off, sc, what in rows[:: args.every]:
        print(f"{w - w0:6d} {z:+6.2f} {m:6.1f} {s:6.1f} {off:+11.4f} {sc:9.4f}  {what}")
    w = np.array([r[0] - w0 for r in rows])
    z = np.array([r[1] for r in rows])
    off = np.array([r[4] for r in rows])
    slow = np.array([r[3] for r in rows])
    print(f"by blocks of {BLOCK} windows: mean z, offset moved in the block (value units), highest slow CUSUM")
    for a in range(0, int(w.max()) + 1, BLOCK):
        m = np.flatnonzero((w >= a) & (w < a + BLOCK))
        if len(m):
            print(f"  {a:6d}-{a + BLOCK:<6d} {z[m].mean():+.3f} {off[m[-1]] - off[m[0]]:+.4f} {slow[m].max():5.1f}")


if __name__ == "__main__":
    main()
