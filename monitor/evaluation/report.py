"""Aggregating results over runs, and reporting them: terminal table, JSON, markdown, plots."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from monitor.evaluation.runner import MONITOR
from monitor.evaluation.scoring import (BAR_FRACTION, MISSED, TYPE_MAP_NOTES, pool_alert_types, pool_collusion,
                                        pool_device_scores)


def aggregate(results: list[dict]) -> dict:
    """Pool the runs of a set: one score per detector, collusion, consensus and learner."""
    if not results:
        return {}
    interval = results[0]["interval_s"]
    names = list(dict.fromkeys(n for r in results for n in r["detectors"]))
    detectors = {n: pool_device_scores([r["detectors"][n] for r in results if n in r["detectors"]], interval)
                 for n in names}
    for n in names:
        secs = sum(r["cost"][n]["seconds"] for r in results if n in r["cost"])
        reads = sum(r["readings"] for r in results if n in r["cost"])
        detectors[n]["readings_per_s"] = reads / secs if secs else float("nan")
    consensus: dict[str, dict] = {}
    for est in dict.fromkeys(n for r in results for n in r.get("consensus", {})):
        rows = [r["consensus"][est] for r in results if est in r.get("consensus", {}) and r["consensus"][est]]
        consensus[est] = {k: _nanmean([row[k] for row in rows]) for k in rows[0]} if rows else {}
        if rows:
            consensus[est]["bias_sigma_max"] = _nanmax([row["bias_sigma_max"] for row in rows])
    learners = [r["learner"] for r in results if r.get("learner")]
    learner = {}
    if learners:
        keys = learners[0]["mae_sigma"].keys()
        mae = {k: _nanmean([lr["mae_sigma"][k] for lr in learners]) for k in keys}
        learner = {"runs": len(learners), "mae_sigma": mae,
                   "guarded_vs_clean": mae["guarded"] / mae["guarded_clean_trained"] - 1,
                   "unguarded_vs_clean": mae["unguarded"] / mae["unguarded_clean_trained"] - 1}
    return {"runs": len(results), "readings": sum(r["readings"] for r in results), "interval_s": interval,
            "device_days": sum(r["devices"] * r["samples"] * r["interval_s"] / 86400 for r in results),
            "detectors": detectors, "collusion": pool_collusion([r["collusion"] for r in results]),
            "alert_types": pool_alert_types([r["alert_types"] for r in results if "alert_types" in r]),
            "consensus": consensus, "learner": learner}


def _nanmean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(xs)) if xs else float("nan")


def _nanmax(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.max(xs)) if xs else float("nan")


def _f(x, digits=2, pct=False) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    if pct:
        return f"{100 * x:.{digits - 1 if digits > 1 else 0}f}%"
    if isinstance(x, (int, np.integer)):
        return f"{x:,}"
    return f"{x:,.{digits}f}"


HEAD = ("detector", "precision", "recall", "F1", "delay median (samples)", "delay p95 (samples)",
        "false alarms / honest device-day", "alarms / fault-day", "alarms / benign-event device-day", "readings/s")


def detector_rows(agg: dict) -> list[list[str]]:
    rows = []
    for name, s in agg["detectors"].items():
        rows.append([f"**{name}**" if name == MONITOR else name, _f(s["precision"]), _f(s["recall"]), _f(s["f1"]),
                     _f(s["delay_median_samples"], 1), _f(s["delay_p95_samples"], 1),
                     _f(s["fa_per_device_day_honest"], 3), _f(s["fa_per_device_day_fault"], 2),
                     _f(s["fa_per_device_day_event"], 2), _f(s.get("readings_per_s"), 0)])
    return rows


def _table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(agg: dict, title: str, command: str, scenarios: list[str], plots: list[str] = ()) -> str:
    """The scoreboard of one set of runs."""
    out = [f"## {title}", "", f"Reproduce: `{command}`", "",
           f"{agg['runs']} runs ({', '.join(scenarios)}), {agg['readings']:,} readings, "
           f"{agg['device_days']:,.1f} device-days.", "",
           "### Single devices (event level, no point adjustment)", "", _table(HEAD, detector_rows(agg)), ""]
    m = agg["detectors"].get(MONITOR, {})
    inside, everywhere = m.get("fa_per_device_day_honest_in_scope"), m.get("fa_per_device_day_honest")
    if inside is not None and inside == inside and inside != everywhere:
        out += [f"The monitor's false alarms per honest device-day without the groups where a colluding set is "
                f"larger than {BAR_FRACTION:.0%} of the group (beyond the bars; there the consensus cannot tell "
                f"which camp is honest): {_f(inside, 3)} (all honest devices: {_f(everywhere, 3)}).", ""]
    types = sorted({t for s in agg["detectors"].values() for t in s["per_type"]})
    if types:
        names = list(agg["detectors"])
        rows = [[t] + [_f(agg["detectors"][n]["per_type"].get(t, {}).get("recall")) for n in names] for t in types]
        out += ["### Recall per attack type and strength", "", _table(["attack"] + names, rows), ""]
        rows = [[t] + [_f(_div(agg["detectors"][n]["per_type"].get(t, {}).get("delay_median_s"),
                                agg["interval_s"]), 1) for n in names] for t in types]
        out += ["### Median detection delay per attack type and strength (samples)", "", _table(["attack"] + names, rows), ""]
    out += alert_type_section(agg.get("alert_types") or {}, agg["interval_s"])
    c = agg["collusion"]
    out += ["### Colluding sets", "",
            _table(["sets", "found (Jaccard ≥ 0.5)", "mean best Jaccard", "collusion alerts", "false collusion alerts",
                    "precision", "recall", "F1", "delay median (s)", "benign correlated events clean"],
                   [[_f(c["sets"]), _f(c["sets_found"]), _f(c["jaccard_mean"]), _f(c["collusion_alerts"]),
                     _f(c["false_collusion_alerts"]), _f(c["precision"]), _f(c["recall"]), _f(c["f1"]),
                     _f(c["delay_median_s"], 0), _f(c["benign_events_clean_fraction"], 3, pct=True)]]), ""]
    b, g = c.get("bar"), c.get("bar_groups")
    if b:
        rows = [[f"sets of at most {b['within']:.0%} of their group ({_f(b['larger_sets'])} larger sets left out; "
                 "an alert naming only those counts neither way)"]]
        if g:
            rows.append([f"groups whose sets are all at most {g['within']:.0%} of the group ({_f(g['larger_groups'])} "
                         "groups left out, their alerts and sets count neither way: as the honest false-alarm rate)"])
        for row, x in zip(rows, (b, g)):
            row += [_f(x["sets"]), _f(x["sets_found"]), _f(x["jaccard_mean"]), _f(x["collusion_alerts"]),
                    _f(x["false_collusion_alerts"]), _f(x["precision"]), _f(x["recall"]), _f(x["f1"])]
        out += ["Within the collusion bar's scope:", "",
                _table(["scope", "sets", "found (Jaccard ≥ 0.5)", "mean best Jaccard", "collusion alerts",
                        "false collusion alerts", "precision", "recall", "F1"], rows), ""]
    out += isolation_section(c.get("isolation") or {}, agg["interval_s"])
    if agg["consensus"]:
        rows = [[f"**{n}**" if n == MONITOR else n, _f(v.get("bias_sigma"), 3), _f(v.get("bias_sigma_max"), 3),
                 _f(v.get("rmse_sigma"), 3), _f(v.get("rmse_truth_sigma"), 3), _f(v.get("uncertain_fraction"), 3)]
                for n, v in agg["consensus"].items() if v]
        out += ["### Consensus under attack (groups with an attack, from its start; in honest-noise sigmas)", "",
                "Bias: mean shift against the same estimator on the same world without the attacks.", "",
                _table(["estimator", "bias", "worst group bias", "RMSE vs clean twin", "RMSE vs true signal",
                        "uncertain windows"], rows), ""]
    if agg["learner"]:
        lr = agg["learner"]
        m = lr["mae_sigma"]
        out += ["### Learner damage (online forecast error, sigmas, against the clean world)", "",
                _table(["learner", "MAE", "same learner trained on clean data", "damage"],
                       [["guarded (learns the trusted consensus; where uncertain, the fallback)", _f(m["guarded"], 3),
                         _f(m["guarded_clean_trained"], 3), _f(lr["guarded_vs_clean"], 2, pct=True)],
                        ["unguarded (learns every reading)", _f(m["unguarded"], 3),
                         _f(m["unguarded_clean_trained"], 3), _f(lr["unguarded_vs_clean"], 2, pct=True)]]), ""]
    for p in plots:
        out += [f"![{Path(p).stem}]({p})", ""]
    return "\n".join(out)


def alert_type_section(types: dict, interval: float) -> list[str]:
    """Markdown lines: type accuracy of the monitor's device alerts on single-device intervals, and the confusion."""
    per = types.get("per_type") or {}
    if not per:
        return []
    grace = types.get("grace_s")
    grace_txt = f"{grace / interval:g} samples" if grace is not None and interval else "the same grace"
    out = ["### Alert types: faults are not attacks", "",
           f"For every labelled interval of a single device (benign faults and single-device attacks; colluding "
           f"sets, sybils and benign correlated events are left out), the first of the {MONITOR}'s device alerts "
           f"on that device overlapping it (up to {grace_txt} after its end, as for recall) gives its type, which "
           f"is right if it is one the mapping below expects for the truth type (baselines have no types).", ""]
    rows = []
    for k, r in per.items():
        has = bool(r["expected"])
        rows.append([k, _f(r["events"]), _f(r["detected"]),
                     f"{r['right']} ({_f(r['right_fraction'], 2, pct=True)})" if has else "–",
                     _f(r["right_of_detected"], 2, pct=True) if has else "–",
                     _f(r["right_any"]) if has else "–",
                     ", ".join(r["expected"]) if has else "none: no such alert type"])
    out += [_table(["truth type (status)", "intervals", "detected", "first alert of the right type",
                    "right / detected", "any overlapping alert of the right type", "alert types counted right"],
                   rows), ""]
    tot = types.get("totals") or {}
    line = []
    for status, name in (("fault", "benign faults"), ("attack", "single-device attacks")):
        t = tot.get(status) or {}
        if t.get("events"):
            line.append(f"{name}: {t['right']}/{t['typed_events']} typed right "
                        f"({_f(t['right_fraction'], 2, pct=True)}), {t['detected']}/{t['events']} detected")
    if line:
        out += ["Totals (rows with an expected type): " + "; ".join(line) + ".", ""]
    truths = {r["truth"] for r in per.values()}
    unmatched = types.get("no_matching_type", ())
    notes = [f"{k}: {v}" for k, v in TYPE_MAP_NOTES.items() if k in truths and k not in unmatched]
    if notes:
        out += ["Mapping: " + "; ".join(notes) + ".", ""]
    if types.get("no_matching_type"):
        out += ["No matching alert type (the monitor has none for it; the confusion table shows what it gets): "
                + ", ".join(types["no_matching_type"]) + ".", ""]
    cols = sorted({t for r in per.values() for t in r["first"] if t != MISSED}) + [MISSED]
    crow = [[k] + [_f(r["first"].get(t, 0)) if r["first"].get(t) else "·" for t in cols] for k, r in per.items()]
    out += ["#### Confusion: truth type x type of the first overlapping alert (intervals)", "",
            _table(["truth type (status)"] + cols, crow), ""]
    return out


def _div(a, b):
    return None if a is None or b is None else a / b


def terminal(agg: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in HEAD:
        table.add_column(h, justify="right" if h != "detector" else "left")
    for row in detector_rows(agg):
        table.add_row(*[c.replace("**", "") for c in row])
    console = Console()
    console.print(table)
    c = agg["collusion"]
    console.print(f"collusion: {c['sets_found']}/{c['sets']} sets found, mean Jaccard {_f(c['jaccard_mean'])}, "
                  f"{c['false_collusion_alerts']} false collusion alerts; benign events clean "
                  f"{_f(c['benign_events_clean_fraction'], 3, pct=True)}, F1 {_f(c['f1'])}")
    b = c.get("bar")
    if b:
        console.print(f"collusion, sets of at most {b['within']:.0%} of their group: {b['sets_found']}/{b['sets']} "
                      f"found, mean Jaccard {_f(b['jaccard_mean'])}, {b['false_collusion_alerts']} false, F1 {_f(b['f1'])}")
    if g := c.get("bar_groups"):
        console.print(f"collusion, groups whose sets are all at most {g['within']:.0%} of the group: "
                      f"{g['sets_found']}/{g['sets']} found, mean Jaccard {_f(g['jaccard_mean'])}, "
                      f"{g['false_collusion_alerts']} false, F1 {_f(g['f1'])}")
    iso = c.get("isolation") or {}
    if iso.get("sets"):
        def samples(key: str, v: dict) -> str:
            return _f(_div(v[key], agg["interval_s"]), 1)

        console.print(f"isolation: {iso['isolated']}/{iso['sets']} sets half out of the consensus, median after "
                      f"{samples('delay_median_s', iso)} samples; " + ", ".join(
                          f"{k}: {v['isolated']}/{v['sets']} at {samples('delay_median_s', v)}"
                          + (f" (any reason {v['isolated_any']} at {samples('delay_any_median_s', v)})"
                             if "isolated_any" in v else "")
                          for k, v in iso.get("per_class", {}).items()))
    tot = (agg.get("alert_types") or {}).get("totals") or {}
    parts = [f"{name} {t['right']}/{t['typed_events']}" for status, name in (("fault", "faults"), ("attack", "attacks"))
             if (t := tot.get(status)) and t.get("events")]
    if parts:
        console.print(f"alert types right (first alert, {MONITOR}): " + ", ".join(parts))
    for n, v in agg["consensus"].items():
        if v:
            console.print(f"consensus {n}: bias {_f(v['bias_sigma'], 3)} sigma (worst {_f(v['bias_sigma_max'], 3)}), "
                          f"RMSE {_f(v['rmse_sigma'], 3)}")
    if agg["learner"]:
        lr = agg["learner"]
        console.print(f"learner damage: guarded {_f(lr['guarded_vs_clean'], 2, pct=True)}, "
                      f"unguarded {_f(lr['unguarded_vs_clean'], 2, pct=True)}")


def isolation_section(iso: dict, interval_s: float) -> list[str]:
    """When colluding sets left the consensus (before any alert: a nominated set is isolated at once)."""
    if not iso.get("sets"):
        return []
    any_reason = "isolated_any" in iso
    rows = [[str(k), _f(v["sets"]), _f(v["isolated"]), _f(_div(v["delay_median_s"], interval_s), 1)]
            + ([_f(v["isolated_any"]), _f(_div(v["delay_any_median_s"], interval_s), 1)] if any_reason else [])
            for k, v in [("all sets", iso)] + list(iso.get("per_class", {}).items())]
    head = ["sets", "count", "isolated (half the members)", "isolation delay median (samples)"]
    return ["#### Isolation: when each set left the consensus", "",
            "A set counts as isolated when half its members have been taken out of the consensus as members of a "
            "nominated or alerted set; delay from the set's start to that moment (the collusion alert itself waits "
            "for confirmation, see above)."
            + (" Out for any reason: the same, counting also a member taken out by an alarm of its own or by "
               "quarantine (a small set's members often trip their own detectors before the set is named)."
               if any_reason else ""), "",
            _table(head + (["out for any reason (half the members)", "delay median (samples)"] if any_reason else []),
                   rows), ""]


def write_json(path: Path, payload: dict) -> None:
    def clean(x):
        if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.floating, np.integer)):
            return clean(x.item())
        return x

    path.write_text(json.dumps(clean(payload), indent=1, sort_keys=False) + "\n")


# ----------------------------------------------------------------------------- plots
def plot_delays(agg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, s in agg["detectors"].items() if s["delays_s"]]
    data = [np.asarray(agg["detectors"][n]["delays_s"]) / 60.0 + 1e-3 for n in names]
    fig, ax = plt.subplots(figsize=(9, 4))
    if data:
        ax.boxplot(data, vert=False, showfliers=True)
        ax.set_yticks(range(1, len(names) + 1), names)
    ax.set_xscale("log")
    ax.set_xlabel("detection delay (minutes of event time, log)")
    ax.set_title("Detection delay of detected attack events")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_per_type(agg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(agg["detectors"])
    types = sorted({t for s in agg["detectors"].values() for t in s["per_type"]})
    fig, ax = plt.subplots(figsize=(max(8, len(types) * 1.1), 4))
    width = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        vals = [agg["detectors"][n]["per_type"].get(t, {}).get("recall", 0.0) for t in types]
        ax.bar(np.arange(len(types)) + i * width, vals, width, label=f"{n} (precision {_f(agg['detectors'][n]['precision'])})")
    ax.set_xticks(np.arange(len(types)) + 0.4 - width / 2, types, rotation=30, ha="right")
    ax.set_ylabel("recall (event level)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Recall per attack type (precision over all types in the legend)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sweep(cells: list[dict], path: Path, estimators: list[str]) -> None:
    """Heat maps of consensus bias against colluding fraction and offset (one panel per estimator)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({c["fraction"] for c in cells})
    offsets = sorted({c["offset"] for c in cells})
    fig, axes = plt.subplots(1, len(estimators), figsize=(3.6 * len(estimators) + 1.2, 3.8), squeeze=False,
                             sharey=True, constrained_layout=True)
    grid_max = max((c["bias"].get(e, 0) or 0 for c in cells for e in estimators), default=1.0)
    for ax, est in zip(axes[0], estimators):
        grid = np.full((len(fractions), len(offsets)), np.nan)
        for c in cells:
            grid[fractions.index(c["fraction"]), offsets.index(c["offset"])] = c["bias"].get(est, np.nan)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="magma_r", vmin=0, vmax=max(grid_max, 1e-3))
        for i in range(len(fractions)):
            for j in range(len(offsets)):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] > grid_max / 2 else "black")
        ax.set_xticks(range(len(offsets)), [f"{o:g}σ" for o in offsets])
        ax.set_yticks(range(len(fractions)), [f"{f:.0%}" for f in fractions])
        ax.set_xlabel("colluders' offset")
        ax.set_title(est)
    axes[0][0].set_ylabel("colluding fraction")
    fig.colorbar(im, ax=axes[0].tolist(), label="consensus bias (σ)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def by_scenario(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        out[r["name"]].append(r)
    return out
