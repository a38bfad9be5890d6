"""Any recorded fleet as a CSV of readings (one row a reading) -> an `EvalData`, ready for `inject`.

Columns ``device_id, group, ts, value`` (``ts``: seconds since the epoch or
RFC 3339). Readings are placed on each group's sample grid of ``interval``
seconds (inferred: the median gap between a device's readings); a device's
honest sigma is its robust spread around the others' median.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from monitor.evaluation.data import EvalData, residual_sigma
from monitor.pipeline import infer_window_seconds
from monitor.schema import Reading


def from_csv(path: str | Path, interval: float | None = None, name: str | None = None) -> EvalData:
    devices, groups, ts, values = [], [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"device_id", "group", "ts", "value"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for row in reader:
            if row["value"] in ("", None):
                continue
            try:
                stamp: float | str = float(row["ts"])
            except ValueError:
                stamp = row["ts"]  # RFC 3339
            r = Reading.model_validate({"device_id": row["device_id"], "group": row["group"], "ts": stamp,
                                        "value": float(row["value"])})
            devices.append(r.device_id)
            groups.append(r.group)
            ts.append(r.ts)
            values.append(r.value)
    ts_arr, val_arr = np.asarray(ts), np.asarray(values)
    step = interval or infer_window_seconds(devices, ts_arr)
    group_names = sorted(set(groups))
    keys = sorted(set(zip(groups, devices)))
    index = {k: i for i, k in enumerate(keys)}
    t0 = np.floor(ts_arr.min() / step) * step
    col = np.floor((ts_arr - t0) / step).astype(np.int64)
    T = int(col.max()) + 1
    grid = np.full((len(keys), T), np.nan)
    rows = np.fromiter((index[(g, d)] for g, d in zip(groups, devices)), np.int64, len(devices))
    grid[rows, col] = val_arr  # the last reading of a device in a sample slot wins
    device_group = np.array([group_names.index(g) for g, _ in keys])
    device_ids = [d for _, d in keys]
    labels = [{"device_id": d, "group": g, "status": "honest", "type": None, "start_ts": None, "end_ts": None,
               "collusion_set": None, "params": {}} for g, d in keys]
    return EvalData(name=name or Path(path).stem, interval=step, device_ids=device_ids, groups=group_names,
                    device_group=device_group, ts=np.tile(t0 + np.arange(T) * step, (len(keys), 1)), values=grid,
                    sigma=residual_sigma(grid, device_group), labels=labels, clean_values=grid.copy(),
                    meta={"source": str(path)})
