"""Throughput of the detection core and of decoding, on one core.

    python benchmarks/throughput.py [--groups 1000] [--devices 20] [--samples 200] [--batch 100000] [--learner-every 1] [--detection.name value ...]

Prints readings per second for (a) the detection core (everything after
decoding: windows, consensus, detectors, collusion, learner) and (b) decoding
and validating JSON messages, plus the detectors' state per device.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _replay import detection_options
from monitor.config import DetectionSettings
from monitor.ingest.decode import DecodedBatch, decode_messages
from monitor.ingest.messages import RawMessage
from monitor.pipeline import Pipeline
from simulators import FleetSimulator, preset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--learner-every", type=int, default=1, help="detection.learner_every")
    args, rest = ap.parse_known_args()  # the rest: --detection.name value pairs

    sim = FleetSimulator(preset("clean", groups=args.groups, devices_per_group=args.devices, samples=args.samples),
                         seed=args.seed)
    n_dev = len(sim.device_ids)
    ids = np.asarray(sim.device_ids, dtype=object)
    groups = np.asarray([sim.groups[g] for g in sim.device_group], dtype=object)
    ts, values = sim.ts.T.ravel(), sim.values.T.ravel()  # tick-major, as a fleet sends them
    dev = np.tile(np.arange(n_dev), args.samples)
    total = len(ts)

    pipe = Pipeline(DetectionSettings(**{"learner_every": args.learner_every, **detection_options(rest)}),
                    window_seconds=sim.scenario.interval_seconds)
    batches = [DecodedBatch(device_ids=ids[dev[i:i + args.batch]].tolist(), groups=groups[dev[i:i + args.batch]].tolist(),
                            ts=ts[i:i + args.batch], values=values[i:i + args.batch])
               for i in range(0, total, args.batch)]
    start = time.perf_counter()
    for b in batches:
        pipe.process(b)
    pipe.flush()
    core = time.perf_counter() - start

    sample = min(total, 100_000)
    msgs = [RawMessage(json.dumps({"device_id": ids[d], "group": groups[d], "ts": float(t), "value": float(v)}).encode())
            for d, t, v in zip(dev[:sample], ts[:sample], values[:sample])]
    start = time.perf_counter()
    decode_messages(msgs)
    decode = time.perf_counter() - start

    # detectors, the device's own statistics (n, mean, var, firing, type, sign, onset, peak), its reputation,
    # its collusion running means (3 float64), its restart tracking (last seq, last event time) and whether it
    # came in a burst of new ids (1 byte), its two offset snapshots (2 float32) and its camouflage CUSUM
    # (2 float32 and an int32: `monitor.mimic`)
    per_device = (sum(det.state_bytes_per_device() for det in pipe.devices.detectors) + 8 * 3 + 1 + 1 + 1 + 8 * 2
                  + 8 * 2 + 1 + pipe.collusion._ewma.shape[1] * 8 + 8 + 8 + pipe._sybil.itemsize
                  + (sum(a.itemsize for a in pipe.devices._drift_state()) if pipe.devices.drift_memory > 0 else 0)
                  + (pipe.levels._snap.itemsize * pipe.levels._snap.shape[1] if pipe.levels is not None else 0)
                  + (q.state_bytes_per_device() if (q := pipe.collusion._quiet) is not None else 0))
    print(f"fleet: {args.groups} groups x {args.devices} devices = {n_dev:,} devices, {args.samples} samples each, "
          f"{total:,} readings, micro-batches of {args.batch:,}, learner_every={args.learner_every}")
    print(f"detection core: {total / core:,.0f} readings/s ({core:.2f} s)")
    print(f"decode + validate JSON: {sample / decode:,.0f} readings/s")
    print(f"per-device state (detectors, statistics, reputation, collusion means and camouflage CUSUM, restarts, "
          f"burst flag, offset snapshots): {per_device} bytes")


if __name__ == "__main__":
    main()
