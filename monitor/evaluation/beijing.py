"""Real multi-station data: the Beijing multi-site air-quality set, as an `EvalData`.

Stations are devices and each quantity is a group (all stations on the same
hourly timestamps). Attacks are injected on top of the real readings by the
simulator's attack library, so the ground truth is known while the honest
behaviour is real (local pollution events, missing hours, sensor quirks).

Shared weather feeds: the TEMP, PRES and DEWP series of some stations are
byte-identical copies of another station's (Aotizhongxin = Guanyuan,
Changping = Dingling, Dongsi = Nongzhanguan = Tiantan, as the data set's
README says; measured here, Wanliu also equals Aotizhongxin in 99.0-99.2% of
hours, so 7 distinct series among 12). A copy is not an independent witness
and would look like a replay, so for those quantities each set of (near-)
identical series is kept once (the first station in alphabetical order) and
the copies are dropped; `EvalData.meta["duplicates_dropped"]` says which.
"""

from __future__ import annotations

import csv
import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from monitor.evaluation.data import EvalData, residual_sigma

QUANTITIES = ("PM2.5", "PM10", "NO2", "CO", "O3", "TEMP", "PRES", "DEWP")
UNITS = {"PM2.5": "ug/m3", "PM10": "ug/m3", "NO2": "ug/m3", "CO": "ug/m3", "O3": "ug/m3", "TEMP": "degC",
         "PRES": "hPa", "DEWP": "degC"}
CST = timezone(timedelta(hours=8))


def default_path() -> Path:
    """Where the data set lies beside the project (``../shared/data/beijing-air``)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data" / "beijing-air" / "beijing-air-2013-03_2015-02.csv.gz"


def load_table(path: str | Path) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """Stations, hourly UTC timestamps (T,), and {quantity: (stations, T) array with NaN for missing}."""
    rows: dict[str, list[list[str]]] = {}
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for row in reader:
            rows.setdefault(row[0], []).append(row)
    stations = sorted(rows)
    first = rows[stations[0]]
    ts = np.array([datetime(int(r[1]), int(r[2]), int(r[3]), int(r[4]), tzinfo=CST).timestamp() for r in first])
    table = {}
    for q in QUANTITIES:
        arr = np.full((len(stations), len(first)), np.nan)
        for i, s in enumerate(stations):
            if len(rows[s]) != len(first):
                raise ValueError(f"{path}: station {s} has {len(rows[s])} rows, expected {len(first)}")
            arr[i] = [float(r[col[q]]) if r[col[q]] != "" else np.nan for r in rows[s]]
        table[q] = arr
    return stations, ts, table


def duplicate_series(values: np.ndarray, stations: list[str], min_equal: float = 0.99) -> dict[str, str]:
    """{dropped station: the station it copies} for series equal in at least ``min_equal`` of shared hours."""
    dropped: dict[str, str] = {}
    for j in range(len(stations)):
        for i in range(j):
            if stations[i] in dropped:
                continue
            both = ~np.isnan(values[i]) & ~np.isnan(values[j])
            if both.sum() and np.mean(values[i][both] == values[j][both]) >= min_equal:
                dropped[stations[j]] = stations[i]
                break
    return dropped


def to_eval_data(path: str | Path | None = None, quantities: tuple[str, ...] = QUANTITIES,
                 hours: int | None = None, dedupe: tuple[str, ...] = ("TEMP", "PRES", "DEWP"),
                 name: str = "beijing") -> EvalData:
    """The clean data set (no attacks yet) as an EvalData; inject attacks with `inject`."""
    stations, ts, table = load_table(path or default_path())
    T = len(ts) if hours is None else min(hours, len(ts))
    device_ids, device_group, values, dropped_all = [], [], [], {}
    for g, q in enumerate(quantities):
        arr = table[q][:, :T]
        dropped = duplicate_series(arr, stations) if q in dedupe else {}
        dropped_all[q] = dropped
        for i, s in enumerate(stations):
            if s in dropped:
                continue
            device_ids.append(f"{s}:{q}")
            device_group.append(g)
            values.append(arr[i])
    values = np.array(values)
    device_group = np.array(device_group)
    sigma = residual_sigma(values, device_group)
    labels = [{"device_id": d, "group": quantities[g], "status": "honest", "type": None, "start_ts": None,
               "end_ts": None, "collusion_set": None, "params": {}} for d, g in zip(device_ids, device_group)]
    return EvalData(name=name, interval=3600.0, device_ids=device_ids, groups=list(quantities),
                    device_group=device_group, ts=np.tile(ts[:T], (len(device_ids), 1)), values=values,
                    sigma=sigma, labels=labels, clean_values=values.copy(), truth=None,
                    meta={"source": "Beijing Multi-Site Air-Quality (UCI, CC BY 4.0)", "hours": T,
                          "duplicates_dropped": dropped_all, "units": {q: UNITS[q] for q in quantities}})
