"""Scoring detections against the ground truth. Pure functions over plain records.

Conventions (no point adjustment, after Kim et al., AAAI 2022):

- An *alarm event* is one alert (firing until resolved) or, for a per-sample
  baseline, one run of consecutive alarming samples of a device: an interval
  ``[start, end)`` of event time on one device.
- An *attack event* is one labelled attack interval of one device.
- Recall: the fraction of attack events that an alarm event on the same device
  overlaps (the attack's interval extended by ``grace`` seconds after its end).
- Precision: the fraction of alarm events that overlap an attack event on
  their device. Alarm events that overlap a *benign fault* interval are
  neither true nor false for attacks: faults are scored apart.
- Delay: from the attack's start to the first alarm on that device that
  overlaps it (0 if an alarm was already on).
- False alarms per device-day: alarm events on honest devices outside any
  labelled interval, per honest device-day; separately those during benign
  fault intervals (per fault-day) and during benign correlated events (per
  event-device-day).

>>> attacks = [Interval("d1", "g", 100.0, 200.0, "bias")]
>>> alarms = [Interval("d1", "g", 130.0, 400.0), Interval("d2", "g", 50.0, 60.0)]
>>> s = score_device_events(alarms, attacks, [], honest_days={"d2": 1.0}, interval=10.0)
>>> s["recall"], s["precision"], s["delay_median_s"], s["fa_per_device_day_honest"]
(1.0, 0.5, 30.0, 1.0)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

DAY = 86400.0


#: The largest colluding set, as a fraction of its group, within the collusion bar's scope (issue 4, bar 5).
BAR_FRACTION = 0.3


@dataclass(frozen=True)
class Interval:
    """One device's interval of event time: an alarm or a labelled truth."""

    device: str
    group: str
    start: float
    end: float                      # exclusive; inf for "until the end"
    type: str | None = None
    members: tuple[str, ...] = ()   # a colluding set's members (collusion alarms and truths)
    key: str = ""                   # alert id / set id


def _overlaps(a: Interval, b: Interval, grace: float) -> bool:
    return a.start < b.end + grace and a.end > b.start


def _stats(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    arr = np.asarray(values, dtype=float)
    return float(np.median(arr)), float(np.percentile(arr, 95))


def f1(precision: float, recall: float) -> float:
    return 0.0 if not (precision + recall) or np.isnan(precision) else 2 * precision * recall / (precision + recall)


def score_device_events(alarms: list[Interval], attacks: list[Interval], faults: list[Interval],
                        honest_days: dict[str, float], interval: float, grace: float = 0.0,
                        events: list[Interval] = (), event_days: float = 0.0, fault_days: float = 0.0,
                        beyond: frozenset[str] = frozenset()) -> dict:
    """Event-level precision, recall, F1, delays and false-alarm rates of one detector.

    ``beyond``: honest devices of groups with a colluding set larger than the bars' scope (see
    `BAR_FRACTION`): the honest false-alarm rate is also given without them (``..._in_scope``)."""
    by_dev: dict[str, list[Interval]] = defaultdict(list)
    for a in alarms:
        by_dev[a.device].append(a)
    for lst in by_dev.values():
        lst.sort(key=lambda a: a.start)

    delays, per_type = [], defaultdict(lambda: {"events": 0, "detected": 0, "delays": []})
    for e in attacks:
        t = per_type[e.type or "attack"]
        t["events"] += 1
        hits = [a for a in by_dev.get(e.device, ()) if _overlaps(a, e, grace)]
        if hits:
            d = max(0.0, min(a.start for a in hits) - e.start)
            delays.append(d)
            t["detected"] += 1
            t["delays"].append(d)
    recall = len(delays) / len(attacks) if attacks else float("nan")

    attack_by_dev, fault_by_dev = defaultdict(list), defaultdict(list)
    for e in attacks:
        attack_by_dev[e.device].append(e)
    for f in faults:
        fault_by_dev[f.device].append(f)
    event_by_dev = defaultdict(list)
    for ev in events:
        event_by_dev[ev.device].append(ev)
    tp = fp = on_fault = on_event = on_honest = on_scope = 0
    for a in alarms:
        if any(_overlaps(a, e, grace) for e in attack_by_dev.get(a.device, ())):
            tp += 1
        elif any(_overlaps(a, f, grace) for f in fault_by_dev.get(a.device, ())):
            on_fault += 1
        else:
            fp += 1
            if any(_overlaps(a, ev, grace) for ev in event_by_dev.get(a.device, ())):
                on_event += 1
            elif a.device in honest_days:
                on_honest += 1
                on_scope += a.device not in beyond
    precision = tp / (tp + fp) if tp + fp else float("nan")
    med, p95 = _stats(delays)
    honest_total = sum(honest_days.values())
    scope_total = sum(v for d, v in honest_days.items() if d not in beyond)
    raw = {"delays_s": delays, "fa_honest": on_honest, "honest_days": honest_total,
           "fa_honest_in_scope": on_scope, "honest_days_in_scope": scope_total, "fa_fault": on_fault,
           "fault_days": fault_days, "fa_event": on_event, "event_days": event_days,
           "per_type": {k: {"events": v["events"], "detected": v["detected"], "delays_s": v["delays"]}
                        for k, v in per_type.items()}}
    return {
        "attack_events": len(attacks), "detected": len(delays), "alarm_events": len(alarms),
        "true_alarms": tp, "false_alarms": fp,
        "precision": precision, "recall": recall, "f1": f1(precision, recall),
        "delay_median_s": med, "delay_p95_s": p95,
        "delay_median_samples": med / interval, "delay_p95_samples": p95 / interval,
        "fa_per_device_day_honest": on_honest / honest_total if honest_total else float("nan"),
        "fa_per_device_day_honest_in_scope": on_scope / scope_total if scope_total else float("nan"),
        "fa_per_device_day_fault": on_fault / fault_days if fault_days else float("nan"),
        "fa_per_device_day_event": on_event / event_days if event_days else float("nan"),
        "per_type": {k: {"events": v["events"], "recall": v["detected"] / v["events"],
                         "delay_median_s": _stats(v["delays"])[0]} for k, v in sorted(per_type.items())},
        "raw": raw,
    }


def pool_device_scores(scores: list[dict], interval: float) -> dict:
    """Pool the scores of several runs of one detector: counts add, delays pool."""
    raw = [s["raw"] for s in scores]
    n_att = sum(s["attack_events"] for s in scores)
    det = sum(s["detected"] for s in scores)
    tp = sum(s["true_alarms"] for s in scores)
    fp = sum(s["false_alarms"] for s in scores)
    delays = [d for r in raw for d in r["delays_s"]]
    med, p95 = _stats(delays)
    rate = lambda n, d: sum(r[n] for r in raw) / sum(r[d] for r in raw) if sum(r[d] for r in raw) else float("nan")  # noqa: E731
    per_type: dict[str, dict] = defaultdict(lambda: {"events": 0, "detected": 0, "delays_s": []})
    for r in raw:
        for k, v in r["per_type"].items():
            per_type[k]["events"] += v["events"]
            per_type[k]["detected"] += v["detected"]
            per_type[k]["delays_s"] += v["delays_s"]
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = det / n_att if n_att else float("nan")
    return {
        "runs": len(scores), "attack_events": n_att, "detected": det, "true_alarms": tp, "false_alarms": fp,
        "precision": precision, "recall": recall, "f1": f1(precision, recall),
        "delay_median_s": med, "delay_p95_s": p95,
        "delay_median_samples": med / interval, "delay_p95_samples": p95 / interval,
        "fa_per_device_day_honest": rate("fa_honest", "honest_days"),
        "fa_per_device_day_honest_in_scope": rate("fa_honest_in_scope", "honest_days_in_scope"),
        "fa_per_device_day_fault": rate("fa_fault", "fault_days"),
        "fa_per_device_day_event": rate("fa_event", "event_days"),
        "per_type": {k: {"events": v["events"], "recall": v["detected"] / v["events"],
                         "delay_median_s": _stats(v["delays_s"])[0], "delays_s": v["delays_s"]}
                     for k, v in sorted(per_type.items())},
        "delays_s": delays,
    }


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def isolation_delays(sets: list[Interval], isolated: list[tuple[str, float]], grace: float = 0.0,
                     excluded: list[tuple[str, float]] | None = None) -> list[dict]:
    """When each colluding set was taken out of the consensus.

    ``isolated``: (device, time) each time a device left the consensus as a
    member of a colluding set (nominated or alerted), from the pipeline's
    recording. A member's delay is from the set's start to its first such time
    within the set (up to ``grace`` after its end); the set's delay is that of
    its median member (half the set out), None if fewer than half were.
    ``excluded``: the same for any reason (a member's own alarm, quarantine, a set);
    ``delay_any_s`` is then the set's delay counting those times too.

    >>> sets = [Interval("", "g", 100, 500, "collusion 0.5σ", ("a", "b", "c"))]
    >>> r = isolation_delays(sets, [("a", 40.0), ("a", 160.0), ("b", 220.0), ("x", 150.0)], excluded=[("b", 130.0)])[0]
    >>> r["delay_s"], r["members_isolated"], r["members"], r["delay_any_s"]
    (120.0, 2, 3, 60.0)
    """
    times = _times(isolated)
    out = [{"group": s.group, "class": s.type, "members": len(s.members)} | _half_out(s, times, grace)
           for s in sets]
    if excluded is not None:
        times = _times(isolated + excluded)
        for row, s in zip(out, sets):
            row["delay_any_s"] = _half_out(s, times, grace)["delay_s"]
    return out


def _times(left: list[tuple[str, float]]) -> dict[str, list[float]]:
    """(device, time) pairs as the times of each device."""
    times: dict[str, list[float]] = defaultdict(list)
    for d, t in left:
        times[d].append(t)
    return times


def _half_out(s: Interval, times: dict[str, list[float]], grace: float) -> dict:
    """Members of ``s`` that left (``times``: per device) within it, and when half of them had."""
    within = ([t for t in times[d] if s.start <= t < s.end + grace] for d in s.members)
    delays = sorted(min(ts) - s.start for ts in within if ts)
    half = (len(s.members) + 1) // 2
    return {"members_isolated": len(delays), "delay_s": delays[half - 1] if len(delays) >= half else None}


def score_collusion(alarms: list[Interval], sets: list[Interval], events: list[Interval], grace: float = 0.0,
                    match: float = 0.5, isolated: list[tuple[str, float]] | None = None,
                    group_sizes: dict[str, int] | None = None, within: float = BAR_FRACTION,
                    excluded: list[tuple[str, float]] | None = None) -> dict:
    """Colluding sets reported as one alert naming the members.

    ``alarms``: collusion alerts (``members`` = the devices named, latest
    version of each alert id); ``sets``: the true colluding sets (``members``,
    interval); ``events``: benign correlated events (``members``, interval).
    A set is found if an alert in its group overlapping it names members with
    Jaccard >= ``match``; an alert matching no set is a false collusion alert.
    With ``isolated`` (and ``excluded``, see `isolation_delays`), also when each set left the consensus.
    With ``group_sizes`` (devices per group), also the same scores over the sets of at most
    ``within`` of their group (``bar``: the scope of the collusion bar); there, an alert matching
    only larger sets counts neither way. ``bar_groups``: the same over the groups whose sets are all
    within ``within`` (the scope of the honest false-alarm rate); the other groups' alerts and sets
    count neither way, so an honest camp named against a larger set is not counted as false there.

    >>> s = score_collusion([Interval("", "g", 10, 50, members=("a", "b", "c"))],
    ...                     [Interval("", "g", 0, 100, members=("a", "b", "c", "d"))], [])
    >>> s["sets_found"], s["jaccard_mean"], s["false_collusion_alerts"]
    (1, 0.75, 0)
    """
    iso = isolation_delays(sets, isolated, grace, excluded) if isolated is not None else []
    found, best_j, delays = 0, [], []
    matched: dict[int, set[int]] = defaultdict(set)  # alarm -> the sets it names
    for k, s in enumerate(sets):
        best, first = 0.0, None
        for i, a in enumerate(alarms):
            if a.group == s.group and _overlaps(a, s, grace):
                j = jaccard(set(a.members), set(s.members))
                if j >= match:
                    matched[i].add(k)
                    first = a.start if first is None else min(first, a.start)
                best = max(best, j)
        best_j.append(best)
        if best >= match:
            found += 1
            delays.append(max(0.0, first - s.start))
    false_alarms = [a for i, a in enumerate(alarms) if i not in matched]
    flagged_events = 0
    for ev in events:
        if any(a.group == ev.group and _overlaps(a, ev, grace) and set(a.members) & set(ev.members)
               for a in alarms):
            flagged_events += 1
    tp = len(matched)
    precision = tp / len(alarms) if alarms else float("nan")
    recall = found / len(sets) if sets else float("nan")
    med, p95 = _stats(delays)
    bar = bar_groups = None
    if group_sizes is not None:
        small = {k for k, x in enumerate(sets) if len(x.members) <= within * group_sizes.get(x.group, 0)}
        in_ids = {i for i, named in matched.items() if named & small}
        n_alarms = len(alarms) - (len(matched) - len(in_ids))  # alarms naming only larger sets are left out
        jac = [best_j[k] for k in sorted(small)]
        bar = {"within": within, "sets": len(small), "sets_found": sum(j >= match for j in jac),
               "collusion_alerts": n_alarms, "matched_alerts": len(in_ids),
               "false_collusion_alerts": n_alarms - len(in_ids), "larger_sets": len(sets) - len(small),
               "jaccards": jac}
        # the groups where every set is within scope (as the honest false-alarm rate's scope): alerts and
        # sets of the other groups count neither way, whatever they name (there half the group may be lying)
        large = {x.group for k, x in enumerate(sets) if k not in small}
        kept = [k for k, x in enumerate(sets) if x.group not in large]
        ids = [i for i, a in enumerate(alarms) if a.group not in large]
        jac_g = [best_j[k] for k in kept]
        hits = sum(1 for i in ids if i in matched)
        bar_groups = {"within": within, "sets": len(kept), "sets_found": sum(j >= match for j in jac_g),
                      "collusion_alerts": len(ids), "matched_alerts": hits,
                      "false_collusion_alerts": len(ids) - hits, "larger_sets": len(sets) - len(kept),
                      "larger_groups": len(large), "jaccards": jac_g}
    return {
        "sets": len(sets), "sets_found": found, "collusion_alerts": len(alarms),
        "false_collusion_alerts": len(false_alarms),
        "precision": precision, "recall": recall, "f1": f1(precision, recall),
        "jaccard_mean": float(np.mean(best_j)) if best_j else float("nan"),
        "delay_median_s": med, "delay_p95_s": p95,
        "benign_events": len(events), "benign_events_flagged": flagged_events,
        "benign_events_clean_fraction": 1 - flagged_events / len(events) if events else float("nan"),
        "raw": {"jaccards": best_j, "delays_s": delays, "matched_alerts": tp,
                "isolation": iso, "bar": bar, "bar_groups": bar_groups},
    } | _isolation_summary(iso) | ({"bar": _bar_summary([bar]), "bar_groups": _bar_summary([bar_groups])}
                                   if bar is not None else {})


def _bar_summary(bars: list[dict]) -> dict:
    """Pooled scores over the sets within the collusion bar's scope (see `score_collusion`)."""
    tot = lambda k: sum(b[k] for b in bars)  # noqa: E731
    alerts, sets = tot("collusion_alerts"), tot("sets")
    precision = tot("matched_alerts") / alerts if alerts else float("nan")
    recall = tot("sets_found") / sets if sets else float("nan")
    jac = [j for b in bars for j in b["jaccards"]]
    return {"within": bars[0]["within"], "sets": sets, "sets_found": tot("sets_found"), "collusion_alerts": alerts,
            "false_collusion_alerts": tot("false_collusion_alerts"), "larger_sets": tot("larger_sets"),
            "larger_groups": sum(b.get("larger_groups", 0) for b in bars),
            "precision": precision, "recall": recall, "f1": f1(precision, recall),
            "jaccard_mean": float(np.mean(jac)) if jac else float("nan")}


def _isolation_summary(rows: list[dict]) -> dict:
    """Sets isolated (half their members out of the consensus) and the median delay, overall and per class."""
    def summary(rs: list[dict]) -> dict:
        d = [r["delay_s"] for r in rs if r["delay_s"] is not None]
        out = {"sets": len(rs), "isolated": len(d), "delay_median_s": float(np.median(d)) if d else None}
        if rs and all("delay_any_s" in r for r in rs):
            a = [r["delay_any_s"] for r in rs if r["delay_any_s"] is not None]
            out |= {"isolated_any": len(a), "delay_any_median_s": float(np.median(a)) if a else None}
        return out
    classes = sorted({r["class"] for r in rows}, key=str)
    return {"isolation": summary(rows) | {"per_class": {str(c): summary([r for r in rows if r["class"] == c])
                                                        for c in classes}, "per_set": rows}}


def pool_collusion(scores: list[dict]) -> dict:
    """Pool collusion scores of several runs."""
    tot = lambda k: sum(s[k] for s in scores)  # noqa: E731
    jac = [j for s in scores for j in s["raw"]["jaccards"]]
    delays = [d for s in scores for d in s["raw"]["delays_s"]]
    alerts, matched = tot("collusion_alerts"), sum(s["raw"]["matched_alerts"] for s in scores)
    precision = matched / alerts if alerts else float("nan")
    recall = tot("sets_found") / tot("sets") if tot("sets") else float("nan")
    med, p95 = _stats(delays)
    events = tot("benign_events")
    iso = _isolation_summary([r for s in scores for r in s["raw"].get("isolation", [])])
    for key in ("bar", "bar_groups"):
        bars = [s["raw"][key] for s in scores if s["raw"].get(key) is not None]
        if bars and len(bars) == len(scores):
            iso |= {key: _bar_summary(bars)}
    return iso | {"sets": tot("sets"), "sets_found": tot("sets_found"), "collusion_alerts": alerts,
            "false_collusion_alerts": tot("false_collusion_alerts"), "precision": precision, "recall": recall,
            "f1": f1(precision, recall), "jaccard_mean": float(np.mean(jac)) if jac else float("nan"),
            "delay_median_s": med, "delay_p95_s": p95, "benign_events": events,
            "benign_events_flagged": tot("benign_events_flagged"),
            "benign_events_clean_fraction": 1 - tot("benign_events_flagged") / events if events else float("nan")}


def runs_to_intervals(alarm: np.ndarray, ts: np.ndarray, devices: list[str], group: str,
                      interval: float) -> list[Interval]:
    """Runs of consecutive alarming samples (T, D) -> one `Interval` per run and device.

    >>> a = np.array([[0, 1], [1, 1], [1, 0], [0, 1]], bool)
    >>> [(i.device, i.start, i.end) for i in runs_to_intervals(a, np.arange(4) * 10.0, ["x", "y"], "g", 10.0)]
    [('x', 10.0, 30.0), ('y', 0.0, 20.0), ('y', 30.0, 40.0)]
    """
    out = []
    for j, dev in enumerate(devices):
        col = alarm[:, j].astype(np.int8)
        edges = np.diff(np.r_[0, col, 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for s, e in zip(starts, ends):
            out.append(Interval(dev, group, float(ts[s]), float(ts[e - 1] + interval)))
    return out


@dataclass
class Truth:
    """The ground truth of an `EvalData`, as intervals, and the exposure of each class."""

    attacks: list[Interval] = field(default_factory=list)
    faults: list[Interval] = field(default_factory=list)
    events: list[Interval] = field(default_factory=list)       # per device
    event_groups: list[Interval] = field(default_factory=list)  # per benign event (members)
    sets: list[Interval] = field(default_factory=list)          # colluding sets (members)
    singles: list[Interval] = field(default_factory=list)       # single-device attacks and faults: type is
    #                                                             the bare kind (no strength), key the status
    honest_days: dict[str, float] = field(default_factory=dict)
    fault_days: float = 0.0
    event_days: float = 0.0


def attack_class(record: dict) -> str:
    """The attack's type with its strength, so that scores can be read per strength.

    >>> attack_class({"type": "bias", "params": {"magnitude": 0.5, "sigma": 0.2}})
    'bias 0.5σ'
    >>> attack_class({"type": "drift", "params": {"rate": 0.001}})
    'drift 0.001σ/sample'
    """
    p = record.get("params") or {}
    t = record.get("type") or "attack"
    if t == "drift" and p.get("rate") is not None:
        return f"{t} {p['rate']:g}σ/sample"
    if p.get("magnitude") is not None and t in ("bias", "collusion", "intermittent", "camouflage", "poison", "sybil"):
        ramp = f" +{p['rate']:g}σ/sample" if p.get("rate") else ""
        return f"{t} {abs(p['magnitude']):g}σ{ramp}"
    return t


def truth_from_labels(labels: list[dict], t0: float, t_end: float) -> Truth:
    """Intervals and exposures from ground-truth records (see `EvalData.labels`)."""
    t = Truth()
    labelled: set[str] = set()
    sets: dict[tuple[str, str], list[dict]] = defaultdict(list)
    events: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in labels:
        status = r["status"]
        if status == "honest":
            continue
        start = float(r["start_ts"])
        end = float(r["end_ts"]) if r.get("end_ts") is not None else float("inf")
        iv = Interval(r["device_id"], r["group"], start, end, attack_class(r) if status == "attack" else r.get("type"))
        days = (min(end, t_end) - max(start, t0)) / DAY
        if status in ("attack", "fault") and not r.get("collusion_set") and r.get("type") != "sybil":
            t.singles.append(Interval(r["device_id"], r["group"], start, end, r.get("type"), key=status))
        if status == "attack":
            t.attacks.append(iv)
            labelled.add(r["device_id"])
            if r.get("collusion_set") and r.get("type") != "sybil":  # sybil floods are input alerts, not sets
                sets[(r["group"], r["collusion_set"])].append(r)
        elif status == "fault":
            t.faults.append(iv)
            t.fault_days += max(days, 0.0)
            labelled.add(r["device_id"])
        elif status == "benign_event":
            t.events.append(iv)
            t.event_days += max(days, 0.0)
            eid = str((r.get("params") or {}).get("event_id", r.get("type")))
            events[(r["group"], eid)].append(r)
    devices = {r["device_id"] for r in labels}
    span_days = (t_end - t0) / DAY
    t.honest_days = {d: span_days for d in sorted(devices - labelled)}
    for (group, key), rs in sorted(sets.items()):
        if len({r["device_id"] for r in rs}) >= 2:  # a "set" of one device is a lone liar, not collusion
            t.sets.append(replace(_group_interval(group, key, rs), type=attack_class(rs[0])))
    for (group, key), rs in sorted(events.items()):
        t.event_groups.append(_group_interval(group, key, rs))
    return t


def _group_interval(group: str, key: str, rs: list[dict]) -> Interval:
    start = min(float(r["start_ts"]) for r in rs)
    ends = [r.get("end_ts") for r in rs]
    end = float("inf") if any(e is None for e in ends) else max(float(e) for e in ends)
    members = tuple(sorted({r["device_id"] for r in rs}))
    return Interval("", group, start, end, rs[0].get("type"), members, key)


# ----------------------------------------------------------------------------- alert types
#: Which device alert types count as the right type for each single-device truth kind (the simulator's
#: attack and fault kinds, simulators/attacks.py). Only types the monitor can emit count (see
#: `expected_alert_types`): a kind left with none has no matching alert type, and its row reports
#: what it gets instead.
TYPE_MAP: dict[str, tuple[str, ...]] = {
    "stuck": ("stuck",),
    "noise": ("noise",),
    "battery": ("noise",),
    "spike": ("spike",),
    "replay": ("replay",),
    "replay_other": ("replay",),
    "bias": ("bias",),
    "drift": ("drift", "bias"),
    "restart": ("restart",),
}
#: Why a mapping is not the identity (shown under the table).
TYPE_MAP_NOTES: dict[str, str] = {
    "drift": "a slow ramp is first reported as bias (the shift is seen before its slope), so bias counts too",
    "battery": "a weakening battery is growing noise: noise",
    "replay_other": "re-sending another device's readings: replay",
    "restart": "a restart counts only as restart (a calibration jump after it reported as bias is a fault "
               "taken for an attack)",
}
MISSED = "missed"


def expected_alert_types(alert_types, type_map: dict[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
    """`TYPE_MAP` restricted to the alert types the monitor emits (``alert_types``).

    >>> expected_alert_types(("stuck", "bias"))["restart"], expected_alert_types(("bias", "drift"))["drift"]
    ((), ('drift', 'bias'))
    """
    known = set(alert_types)
    return {k: tuple(t for t in v if t in known) for k, v in (type_map or TYPE_MAP).items()}


def type_label(truth: Interval) -> str:
    """The row of a single-device truth interval: its kind and status, e.g. ``stuck (fault)``."""
    return f"{truth.type} ({truth.key})" if truth.key else str(truth.type)


def score_alert_types(alarms: list[Interval], truths: list[Interval], expected: dict[str, tuple[str, ...]],
                      grace: float = 0.0) -> dict:
    """Type accuracy of device alerts on single-device truth intervals.

    For every truth interval (``type`` the kind, ``key`` the status), the device
    alerts on its device overlapping it (its end extended by ``grace``, as for
    recall) are taken; the type of the first one (earliest start) is recorded,
    or `MISSED`. It is right if it is one of ``expected[kind]``; ``right_any``:
    any of the overlapping alerts carried an expected type (a later, more
    specific verdict). Rows are per kind and status; ``first`` is the row of
    the confusion table (first alert type -> count). ``events`` lists every
    interval with its first alert's type and start after the interval's
    (negative: the alert was already on).

    >>> truths = [Interval("a", "g", 0, 100, "stuck", key="fault"), Interval("b", "g", 0, 100, "bias", key="attack")]
    >>> alarms = [Interval("a", "g", 10, 20, "bias"), Interval("a", "g", 20, 90, "stuck")]
    >>> s = score_alert_types(alarms, truths, {"stuck": ("stuck",), "bias": ("bias",)})
    >>> r = s["per_type"]["stuck (fault)"]
    >>> r["events"], r["detected"], r["right"], r["right_any"], r["first"]
    (1, 1, 0, 1, {'bias': 1})
    >>> s["per_type"]["bias (attack)"]["first"]
    {'missed': 1}
    """
    by_dev: dict[str, list[Interval]] = defaultdict(list)
    for a in alarms:
        by_dev[a.device].append(a)
    for lst in by_dev.values():
        lst.sort(key=lambda a: a.start)     # stable: alerts starting together keep their order
    rows: dict[str, dict] = {}
    events = []
    for e in truths:
        ok = tuple(expected.get(e.type, ()))
        row = rows.setdefault(type_label(e), _type_row(e.type, e.key, ok))
        hits = [a for a in by_dev.get(e.device, ()) if _overlaps(a, e, grace)]
        first = (hits[0].type or "untyped") if hits else MISSED
        right, right_any = first in ok, any(a.type in ok for a in hits)
        row["events"] += 1
        row["detected"] += bool(hits)
        row["right"] += right
        row["right_any"] += right_any
        row["first"][first] = row["first"].get(first, 0) + 1
        events.append({"device": e.device, "group": e.group, "truth": e.type, "status": e.key, "start": e.start,
                       "end": e.end, "first": first, "first_after_s": hits[0].start - e.start if hits else None,
                       "right": right, "right_any": right_any})
    return _type_summary(rows) | {"events": events, "mapping": {k: list(v) for k, v in sorted(expected.items())}}


def _type_row(truth: str | None, status: str, expected: tuple[str, ...]) -> dict:
    return {"truth": truth, "status": status, "expected": list(expected), "events": 0, "detected": 0, "right": 0,
            "right_any": 0, "first": {}}


def _type_summary(rows: dict[str, dict]) -> dict:
    order = sorted(rows, key=lambda k: (rows[k]["status"] != "fault", str(rows[k]["truth"]), k))
    per_type = {}
    for k in order:
        r = rows[k]
        has = bool(r["expected"])
        per_type[k] = r | {
            "first": dict(sorted(r["first"].items(), key=lambda kv: (kv[0] == MISSED, kv[0]))),
            "right_fraction": r["right"] / r["events"] if has and r["events"] else float("nan"),
            "right_of_detected": r["right"] / r["detected"] if has and r["detected"] else float("nan"),
        }
    totals = {}
    for status in ("fault", "attack"):
        rs = [r for r in rows.values() if r["status"] == status]
        n = sum(r["events"] for r in rs)
        typed = [r for r in rs if r["expected"]]
        totals[status] = {"events": n, "detected": sum(r["detected"] for r in rs),
                          "typed_events": sum(r["events"] for r in typed),
                          "right": sum(r["right"] for r in typed),
                          "right_fraction": (sum(r["right"] for r in typed) / sum(r["events"] for r in typed)
                                             if sum(r["events"] for r in typed) else float("nan"))}
    return {"per_type": per_type, "totals": totals,
            "no_matching_type": sorted({str(r["truth"]) for r in rows.values() if not r["expected"]})}


def pool_alert_types(scores: list[dict]) -> dict:
    """Pool type accuracy over runs: per row, the counts and the confusion counts add."""
    rows: dict[str, dict] = {}
    for s in scores:
        for k, v in s.get("per_type", {}).items():
            row = rows.setdefault(k, _type_row(v["truth"], v["status"], tuple(v["expected"])))
            row["expected"] = list(dict.fromkeys(row["expected"] + list(v["expected"])))
            for n in ("events", "detected", "right", "right_any"):
                row[n] += v[n]
            for t, c in v["first"].items():
                row["first"][t] = row["first"].get(t, 0) + c
    graces = {s["grace_s"] for s in scores if s.get("grace_s") is not None}
    mapping: dict[str, list[str]] = {}
    for s in scores:
        for k, v in s.get("mapping", {}).items():
            mapping[k] = list(dict.fromkeys(mapping.get(k, []) + list(v)))
    return _type_summary(rows) | {"runs": len(scores), "grace_s": graces.pop() if len(graces) == 1 else None,
                                  "mapping": dict(sorted(mapping.items()))}
