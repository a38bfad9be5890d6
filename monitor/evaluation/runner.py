"""Run one `EvalData` through the monitor's pipeline and the baselines, and score everything.

The monitor runs exactly as `run` and `replay` do (the same `Pipeline`, fed
the readings in the order they were sent, in micro-batches), in process and
as fast as the machine goes. Its twin run on the same world without the
attacks gives the reference for consensus bias and for the learner trained
on clean data.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import numpy as np

from monitor.config import DetectionSettings
from monitor.evaluation.data import EvalData
from monitor.evaluation.scoring import (BAR_FRACTION, Interval, Truth, expected_alert_types, runs_to_intervals,
                                        score_alert_types, score_collusion, score_device_events, truth_from_labels)
from monitor.ingest.decode import DecodedBatch
from monitor.pipeline import DEVICE_ALERT_TYPES as DEVICE_TYPES, Pipeline, Recording
from monitor.schema import Alert

MONITOR = "poison-monitor"


def _batches(readings: Iterable[dict], size: int) -> Iterable[DecodedBatch]:
    chunk: list[dict] = []
    for r in readings:
        chunk.append(r)
        if len(chunk) >= size:
            yield _decoded(chunk)
            chunk = []
    if chunk:
        yield _decoded(chunk)


def _decoded(chunk: list[dict]) -> DecodedBatch:
    return DecodedBatch(device_ids=[r["device_id"] for r in chunk], groups=[r["group"] for r in chunk],
                        ts=np.fromiter((float(r["ts"]) for r in chunk), float, len(chunk)),
                        values=np.fromiter((float(r["value"]) for r in chunk), float, len(chunk)),
                        seq=np.fromiter((-1 if r.get("seq") is None else int(r["seq"]) for r in chunk), np.int64,
                                        len(chunk)))


def run_monitor(data: EvalData, settings: DetectionSettings, batch_size: int = 20_000,
                readings: Iterable[dict] | None = None) -> tuple[list[Alert], Recording, Pipeline, float, int]:
    """The pipeline over the data's readings; returns alerts, the recording, the pipeline, seconds, readings."""
    batches = list(_batches(data.readings() if readings is None else readings, batch_size))
    pipe = Pipeline(settings, window_seconds=data.interval, record=True)
    alerts: list[Alert] = []
    start = time.perf_counter()
    for b in batches:
        alerts += pipe.process(b).alerts
    alerts += pipe.flush().alerts
    seconds = time.perf_counter() - start
    return alerts, pipe.recording, pipe, seconds, sum(len(b) for b in batches)


def alert_intervals(alerts: list[Alert], t_end: float) -> tuple[list[Interval], list[Interval]]:
    """Device alarm events (device alerts, and each device named by a collusion or input alert from
    when it is named) and collusion alarm events (one per collusion alert id, with its final members)."""
    device: dict[str, Interval] = {}
    order: list[str] = []
    coll: dict[str, dict] = {}
    member_start: dict[tuple[str, str], float] = {}
    for a in alerts:
        if a.kind == "device":
            if a.state == "firing":
                device[a.alert_id] = Interval(a.devices[0], a.group, a.ts, math.inf, a.type, key=a.alert_id)
                order.append(a.alert_id)
            elif a.alert_id in device:
                iv = device[a.alert_id]
                device[a.alert_id] = Interval(iv.device, iv.group, iv.start, a.ts, iv.type, key=iv.key)
        elif a.kind in ("collusion", "input"):
            c = coll.setdefault(a.alert_id, {"group": a.group, "start": a.ts, "end": math.inf, "members": set(),
                                             "kind": a.kind, "type": a.type})
            if a.state == "firing":  # (again: a set seen anew after it resolved is the same alert)
                c["end"] = math.inf
                c["members"] |= set(a.devices)
                for d in a.devices:
                    member_start.setdefault((a.alert_id, d), a.ts)
            else:
                c["end"] = a.ts
    out = [device[k] for k in order]
    for (aid, d), start in member_start.items():
        out.append(Interval(d, coll[aid]["group"], start, coll[aid]["end"], coll[aid]["type"], key=aid))
    sets = [Interval("", c["group"], c["start"], c["end"], "collusion", tuple(sorted(c["members"])), aid)
            for aid, c in coll.items() if c["kind"] == "collusion"]
    return out, sets


def _group_sigma(data: EvalData, truth: Truth) -> np.ndarray:
    """Per group: the median honest noise sigma of its devices (the unit of bias and RMSE)."""
    liars = {i.device for i in truth.attacks}
    out = np.empty(len(data.groups))
    for g in range(len(data.groups)):
        idx = [d for d in np.flatnonzero(data.device_group == g) if data.device_ids[d] not in liars]
        idx = idx or list(np.flatnonzero(data.device_group == g))
        out[g] = float(np.median(data.sigma[idx]))
    return out


def _group_windows(data: EvalData, g: int) -> np.ndarray:
    ts = data.ts[data.device_group == g]
    return np.floor(np.nanmedian(ts, axis=0) / data.interval).astype(np.int64)


def _recorded(rec: Recording, pipe: Pipeline, data: EvalData, field: str) -> dict[int, dict[int, float]]:
    """{data group index: {window: value}} from a pipeline recording."""
    names = {n: i for i, n in enumerate(data.groups)}
    out: dict[int, dict[int, float]] = defaultdict(dict)
    values = getattr(rec, field)
    for g, w, v in zip(rec.group, rec.window, values):
        out[names[pipe.registry.group_names[g]]][w] = v
    return out


def consensus_metrics(est: np.ndarray, clean: np.ndarray, sigma: float, truth: np.ndarray | None) -> dict:
    """Bias (mean shift against the same estimator on the clean world) and RMSE, in sigmas."""
    ok = np.isfinite(est) & np.isfinite(clean)
    if not ok.any():
        return {"bias_sigma": float("nan"), "rmse_sigma": float("nan"), "rmse_truth_sigma": float("nan"),
                "uncertain_fraction": 1.0}
    diff = (est - clean)[ok]
    out = {"bias_sigma": float(abs(diff.mean()) / sigma), "rmse_sigma": float(np.sqrt(np.mean(diff ** 2)) / sigma),
           "uncertain_fraction": float(1 - np.isfinite(est).mean())}
    if truth is not None:
        level = np.nanmedian(clean - truth)
        err = (est - truth - level)[ok]
        out["rmse_truth_sigma"] = float(np.sqrt(np.mean(err ** 2)) / sigma)
    else:
        out["rmse_truth_sigma"] = float("nan")
    return out


def _mean_metrics(rows: list[dict]) -> dict:
    if not rows:
        return {}
    keys = rows[0].keys()
    return {k: float(np.nanmean([r[k] for r in rows])) if any(np.isfinite(r[k]) for r in rows) else float("nan")
            for k in keys} | {"bias_sigma_max": float(np.nanmax([r["bias_sigma"] for r in rows]))
                              if any(np.isfinite(r["bias_sigma"]) for r in rows) else float("nan")}


def evaluate(data: EvalData, settings: DetectionSettings | None = None, clean: EvalData | None = None,
             device_baselines: dict[str, Callable] | None = None, consensus_baselines: dict | None = None,
             grace_seconds: float | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Score the monitor and the baselines on one run; returns a JSON-able result."""
    settings = settings or DetectionSettings()
    say = progress or (lambda _m: None)
    t0 = float(np.nanmin(data.ts))
    t_end = float(np.nanmax(data.ts)) + data.interval
    grace = data.interval * 10 if grace_seconds is None else grace_seconds
    truth = truth_from_labels(data.labels, t0, t_end)
    sigma_g = _group_sigma(data, truth)

    say(f"{data.name}: monitor")
    alerts, rec, pipe, seconds, n_readings = run_monitor(data, settings)
    dev_alarms, coll_alarms = alert_intervals(alerts, t_end)
    result: dict = {
        "name": data.name, "devices": data.n_devices, "groups": len(data.groups), "samples": data.n_samples,
        "interval_s": data.interval, "readings": n_readings, "meta": data.meta,
        "detectors": {}, "consensus": {}, "learner": {}, "cost": {},
    }
    sizes = {data.groups[g]: int(n) for g, n in zip(*np.unique(data.device_group, return_counts=True))}
    large = {x.group for x in truth.sets if len(x.members) > BAR_FRACTION * sizes.get(x.group, 0)}
    beyond = frozenset(d for d, g in zip(data.device_ids, data.device_group) if data.groups[g] in large)
    kw = dict(faults=truth.faults, honest_days=truth.honest_days, interval=data.interval, grace=grace,
              events=truth.events, event_days=truth.event_days, fault_days=truth.fault_days, beyond=beyond)
    result["detectors"][MONITOR] = score_device_events(dev_alarms, truth.attacks, **kw)
    result["collusion"] = score_collusion(coll_alarms, truth.sets, truth.event_groups, grace, isolated=rec.isolated,
                                          excluded=rec.excluded, group_sizes=sizes)
    # alert types (the monitor's own device alerts only: baselines have no types)
    device_ids = {a.alert_id for a in alerts if a.kind == "device"}
    result["alert_types"] = score_alert_types([i for i in dev_alarms if i.key in device_ids], truth.singles,
                                              expected_alert_types(DEVICE_TYPES), grace) | {"grace_s": grace}
    result["cost"][MONITOR] = {"readings_per_s": n_readings / seconds if seconds else float("nan"),
                               "seconds": seconds}
    result["alert_counts"] = _alert_counts(alerts)

    if device_baselines is None:
        from monitor.evaluation.baselines import DEVICE_BASELINES as device_baselines  # noqa: N811
    for name, make in device_baselines.items():
        say(f"{data.name}: {name}")
        alarms: list[Interval] = []
        start = time.perf_counter()
        for g, group in enumerate(data.groups):
            X = data.group_matrix(g)
            ts = np.nanmedian(data.ts[data.device_group == g], axis=0)
            alarms += runs_to_intervals(make().alarms(X), ts, data.group_devices(g), group, data.interval)
        seconds = time.perf_counter() - start
        result["detectors"][name] = score_device_events(alarms, truth.attacks, **kw)
        result["cost"][name] = {"readings_per_s": n_readings / seconds if seconds else float("nan"),
                                "seconds": seconds}

    clean = clean or _clean_of(data)
    if clean is not None:
        say(f"{data.name}: clean twin")
        _, crec, cpipe, _, _ = run_monitor(clean, settings)
        result["consensus"], result["learner"] = _consensus_and_learner(
            data, clean, truth, sigma_g, rec, pipe, crec, cpipe, consensus_baselines)
    return result


def _alert_counts(alerts: list[Alert]) -> dict:
    counts: dict[str, int] = defaultdict(int)
    for a in alerts:
        if a.state == "firing":
            counts[f"{a.kind}/{a.type}"] += 1
    return dict(sorted(counts.items()))


def _clean_of(data: EvalData) -> EvalData | None:
    if data.clean_values is None:
        return None
    return EvalData(name=data.name + " (clean)", interval=data.interval, device_ids=data.device_ids,
                    groups=data.groups, device_group=data.device_group, ts=data.ts, values=data.clean_values,
                    sigma=data.sigma, labels=[], clean_values=data.clean_values, truth=data.truth)


def _consensus_and_learner(data, clean, truth, sigma_g, rec, pipe, crec, cpipe, consensus_baselines):
    if consensus_baselines is None:
        from monitor.evaluation.baselines import CONSENSUS_BASELINES as consensus_baselines  # noqa: N811
    attacked_groups = sorted({data.groups.index(i.group) for i in truth.attacks})
    first_attack = {g: min(i.start for i in truth.attacks if i.group == data.groups[g]) for g in attacked_groups}
    ours = _recorded(rec, pipe, data, "consensus")
    ours_clean = _recorded(crec, cpipe, clean, "consensus")
    rows: dict[str, list[dict]] = defaultdict(list)
    learner_rows = []
    # each learner is judged against its own kind of target in the clean world, beside its clean-trained twin
    guarded, shadow = _recorded(rec, pipe, data, "guarded"), _recorded(rec, pipe, data, "shadow")
    guarded_clean, shadow_clean = _recorded(crec, cpipe, clean, "guarded"), _recorded(crec, cpipe, clean, "shadow")
    target_consensus, target_plain = ours_clean, _recorded(crec, cpipe, clean, "plain_mean")
    for g in attacked_groups:
        windows = _group_windows(data, g)
        after = windows >= math.floor(first_attack[g] / data.interval)
        tr = data.truth[g][after] if data.truth is not None else None
        pick = lambda m: np.array([m.get(int(w), np.nan) for w in windows[after]])  # noqa: E731
        rows[MONITOR].append(consensus_metrics(pick(ours[g]), pick(ours_clean[g]), sigma_g[g], tr))
        X, Xc = data.group_matrix(g), clean.values[data.device_group == g].T
        for name, est in consensus_baselines.items():
            fn = est.estimate if hasattr(est, "estimate") else est
            rows[name].append(consensus_metrics(fn(X)[after], fn(Xc)[after], sigma_g[g], tr))
        # learner damage: forecasts made online (before learning each window), in sigmas
        tc, tp, fg, fgc, fs, fsc = (pick(m[g]) for m in (target_consensus, target_plain, guarded, guarded_clean,
                                                          shadow, shadow_clean))
        ok = np.isfinite(tc) & np.isfinite(tp) & np.isfinite(fg) & np.isfinite(fgc) & np.isfinite(fs) & np.isfinite(fsc)
        if ok.any():
            mae = lambda f, t: float(np.mean(np.abs(f[ok] - t[ok])) / sigma_g[g])  # noqa: E731
            learner_rows.append({"guarded": mae(fg, tc), "guarded_clean_trained": mae(fgc, tc),
                                 "unguarded": mae(fs, tp), "unguarded_clean_trained": mae(fsc, tp)})
    consensus = {name: _mean_metrics(r) for name, r in rows.items()}
    learner = {}
    if learner_rows:
        mae = {k: float(np.mean([r[k] for r in learner_rows])) for k in learner_rows[0]}
        learner = {"mae_sigma": mae,
                   "guarded_vs_clean": mae["guarded"] / mae["guarded_clean_trained"] - 1,
                   "unguarded_vs_clean": mae["unguarded"] / mae["unguarded_clean_trained"] - 1}
    return consensus, learner
