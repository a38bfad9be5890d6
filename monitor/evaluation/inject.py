"""Inject the simulator's attacks into recorded real readings (an `EvalData`), with ground truth.

The attacks are described as in a scenario file (a list of `AttackSpec`s);
``group`` is a group name of the data, ``devices`` are device ids of that
group, or ``count`` devices are drawn by seed among the untargeted ones.
Magnitudes are in units of each device's honest sigma (`EvalData.sigma`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from monitor.evaluation.data import EvalData


def load_attacks(path: str | Path) -> list:
    """The ``attacks`` list of a YAML/TOML/JSON file, as `AttackSpec`s."""
    from simulators.files import read_document
    from simulators.scenario import AttackSpec

    doc = read_document(Path(path))
    return [AttackSpec.model_validate(a) for a in doc.get("attacks", [])], doc.get("name", Path(path).stem)


def inject(clean: EvalData, attacks_file: str | Path, seed: int = 0) -> EvalData:
    """A copy of ``clean`` with the attacks of ``attacks_file`` applied, and their labels."""
    from simulators.attacks import KINDS, Placement, resolve_params

    specs, name = load_attacks(attacks_file)
    rng = np.random.default_rng(seed)
    values = clean.values.copy()
    times = np.nanmedian(clean.ts, axis=0)
    T = clean.n_samples
    taken = np.zeros(clean.n_devices, bool)
    labels_by_device: dict[int, list[dict]] = {}
    n_sets = 0
    for i, spec in enumerate(specs):
        kind = KINDS[spec.type]
        if kind.creates_devices:
            raise ValueError(f"attack {i} ({spec.type}): cannot add devices to recorded data")
        if spec.group is None or str(spec.group) not in clean.groups:
            raise ValueError(f"attack {i} ({spec.type}): group must be one of {clean.groups}")
        g = clean.groups.index(str(spec.group))
        group_rows = np.flatnonzero(clean.device_group == g)
        if spec.devices is not None:
            rows = np.array(sorted(clean.device_ids.index(str(d)) for d in spec.devices))
            lead = clean.device_ids.index(str(spec.devices[0]))
        else:
            count = spec.count or kind.default_count
            pool = group_rows[~taken[group_rows]]
            if len(pool) < count:
                raise ValueError(f"attack {i} ({spec.type}): only {len(pool)} untargeted devices in {spec.group}")
            drawn = rng.choice(pool, size=count, replace=False)
            lead, rows = int(drawn[0]), np.sort(drawn)
        taken[rows] = True
        source = None
        if spec.type == "replay_other":
            others = np.setdiff1d(group_rows, rows)
            source = (clean.device_ids.index(str(spec.source)) if spec.source is not None
                      else int(rng.choice(others)))
        set_id = None
        if kind.shared:
            set_id = spec.name or f"collusion-{n_sets}"
            n_sets += 1
        stop = T if spec.end is None else min(spec.end, T)
        p = Placement(i, kind, spec.status, g, rows.astype(np.intp), spec.start, stop, stop == T,
                      resolve_params(spec), set_id, lead, source)
        p.apply(values, clean.sigma, rng, times, group_rows)
        for row in rows.tolist():
            params = dict(p.params) | {"sigma": float(clean.sigma[rows].mean() if kind.shared else clean.sigma[row])}
            if source is not None:
                params["source"] = clean.device_ids[source]
            for a, b in p.runs(times):
                labels_by_device.setdefault(row, []).append({
                    "device_id": clean.device_ids[row], "group": clean.groups[g], "status": p.status,
                    "type": kind.name, "start_ts": float(times[a]),
                    "end_ts": None if (p.open_ended and b == T) else float(times[b - 1]),
                    "collusion_set": None if p.status == "benign_event" else set_id, "params": params})
    labels = []
    for row, dev in enumerate(clean.device_ids):
        labels += labels_by_device.get(row) or [{"device_id": dev, "group": clean.groups[clean.device_group[row]],
                                                 "status": "honest", "type": None, "start_ts": None, "end_ts": None,
                                                 "collusion_set": None, "params": {}}]
    out = copy.copy(clean)
    out.values, out.labels, out.name = values, labels, f"{clean.name}+{name}"
    out.clean_values = clean.values
    out.meta = {**clean.meta, "attacks": str(attacks_file), "seed": seed}
    return out
