"""``poison-monitor evaluate``: run the sets, write results.json, SCOREBOARD.md and the plots."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from rich.console import Console

from monitor.evaluation import report
from monitor.evaluation.runner import MONITOR, evaluate
from monitor.evaluation.suite import run_all, scenario_files, simulated, sweep_cells

SWEEP_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5)
SWEEP_OFFSETS = (0.25, 0.5, 1.0, 3.0, 10.0)


def _baselines(names: list[str] | None) -> dict:
    from monitor.evaluation.baselines import DEVICE_BASELINES

    if names is None:
        return dict(DEVICE_BASELINES)
    unknown = [n for n in names if n not in DEVICE_BASELINES]
    if unknown:
        raise SystemExit(f"poison-monitor: error: option baselines: unknown {unknown} (known: {list(DEVICE_BASELINES)})")
    return {n: DEVICE_BASELINES[n] for n in names}


def _beijing_path(opt: str | None) -> Path | None:
    from monitor.evaluation.beijing import default_path

    if opt is None or opt == "none":
        return None
    path = default_path() if opt == "auto" else Path(opt)
    return path if path.is_file() else None


def run_evaluation(opts) -> dict:
    console = Console(stderr=True)
    started = time.perf_counter()
    say = lambda msg: console.log(msg)  # noqa: E731
    out = Path(opts.out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    command = "poison-monitor " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "poison-monitor evaluate"
    baselines = _baselines(opts.baselines)
    from monitor.evaluation.baselines import CONSENSUS_BASELINES

    files = scenario_files(opts.scenarios)
    results = run_all(simulated(opts.scenarios, opts.seeds), opts.detection, baselines, CONSENSUS_BASELINES, say)
    overall = report.aggregate(results)
    per_scenario = {name: report.aggregate(rs) for name, rs in report.by_scenario(results).items()}
    report.terminal(overall, f"reporting set: {len(files)} scenarios x {len(opts.seeds)} seeds")

    plots = {"delays": "plots/delays.png", "per_type": "plots/recall_per_type.png"}
    report.plot_delays(overall, out / plots["delays"])
    report.plot_per_type(overall, out / plots["per_type"])

    cells = []
    if opts.sweep:
        cells = sweep_cells(SWEEP_FRACTIONS, SWEEP_OFFSETS, opts.sweep_seeds, opts.detection, CONSENSUS_BASELINES, say)
        plots["sweep"] = "plots/consensus_bias_sweep.png"
        report.plot_sweep(cells, out / plots["sweep"], [MONITOR, "median", "trimmed_mean_20", "iterative_filtering"])

    beijing = None
    path = _beijing_path(opts.beijing)
    if path is not None:
        from monitor.evaluation.beijing import to_eval_data
        from monitor.evaluation.inject import inject

        say(f"Beijing replay from {path}")
        clean = to_eval_data(path)
        attacked = inject(clean, opts.beijing_attacks, seed=opts.seeds[0])
        beijing = evaluate(attacked, opts.detection, clean=clean, device_baselines=baselines,
                           consensus_baselines=CONSENSUS_BASELINES, progress=say)
        report.terminal(report.aggregate([beijing]), "Beijing replay with injected attacks")
    elif opts.beijing not in (None, "none"):
        say("Beijing data not found: skipped (pass --beijing PATH)")

    real = None
    if opts.real_csv is not None:
        from monitor.evaluation.csvdata import from_csv
        from monitor.evaluation.inject import inject

        if opts.real_attacks is None:
            raise SystemExit("poison-monitor: error: option real_attacks: needed with --real-csv")
        say(f"replaying {opts.real_csv} with the attacks of {opts.real_attacks}")
        clean = from_csv(opts.real_csv)
        real = evaluate(inject(clean, opts.real_attacks, seed=opts.seeds[0]), opts.detection, clean=clean,
                        device_baselines=baselines, consensus_baselines=CONSENSUS_BASELINES, progress=say)
        report.terminal(report.aggregate([real]), f"{opts.real_csv} with injected attacks")

    payload = {"command": command, "scenarios": files, "seeds": opts.seeds, "overall": overall,
               "per_scenario": per_scenario, "sweep": cells, "beijing": _summary(beijing) if beijing else None,
               "real_csv": _summary(real) if real else None,
               "runs": [_summary(r) for r in results],
               "settings": opts.detection.model_dump()}
    report.write_json(out / "results.json", payload)
    md = scoreboard(command, files, opts.seeds, overall, per_scenario, cells, beijing, plots)
    if real is not None:
        md += "\n" + report.markdown(report.aggregate([real]), f"{opts.real_csv}: real readings, injected attacks",
                                     command, [real["name"]]) + "\n"
    (out / "SCOREBOARD.md").write_text(md)
    say(f"wrote {out / 'SCOREBOARD.md'}, {out / 'results.json'} and {len(plots)} plots "
        f"in {time.perf_counter() - started:.0f} s")
    return payload


def _summary(run: dict) -> dict:
    """A run without its raw per-event lists (they are in the pooled figures)."""
    out = dict(run)
    out["detectors"] = {n: {k: v for k, v in s.items() if k != "raw"} for n, s in run["detectors"].items()}
    out["collusion"] = {k: v for k, v in run["collusion"].items() if k != "raw"}
    return out


def scoreboard(command, files, seeds, overall, per_scenario, cells, beijing, plots) -> str:
    lines = ["# Scoreboard", "",
             "Generated by the evaluation harness; every figure below comes from this command, run from the "
             "repository root:", "", f"```bash\n{command}\n```", "",
             "Definitions: event-level precision and recall without point adjustment (an alarm event is one alert, "
             "or one run of consecutive alarming samples of a baseline; it is true if it overlaps an attack on its "
             "device, up to 10 samples after the attack's end). Delay: from the attack's start to the first alarm "
             "overlapping it. Alarms on benign faults count neither way for attacks and are reported per fault-day. "
             "Sigma: the honest noise of the devices. The defaults were chosen on `scenarios/tuning/` and on the "
             "presets clean, demo and mixed with seeds 0-5, never on what is reported here: "
             "`scenarios/reporting/` (other seeds, sizes and strengths), the sweep and the Beijing replay.", ""]
    lines.append(report.markdown(overall, "Reporting set: all scenarios pooled", command,
                                 [Path(f).stem for f in files], [plots["delays"], plots["per_type"]]))
    lines += ["", "## Per scenario", "", _per_scenario_table(per_scenario), ""]
    if cells:
        lines += ["## Consensus bias: colluding fraction x offset", "",
                  "One group of 20 devices per cell; bias against the same estimator without the attack, in sigmas.",
                  "", f"![sweep]({plots['sweep']})", "", _sweep_table(cells), ""]
    if beijing is not None:
        agg = report.aggregate([beijing])
        lines += [report.markdown(agg, "Beijing air quality: real readings, injected attacks", command,
                                  ["beijing"]).replace("## ", "## ", 1),
                  "", f"Stations dropped as copies of another's weather series: "
                      f"{beijing['meta'].get('duplicates_dropped')}", ""]
    return "\n".join(lines) + "\n"


def _per_scenario_table(per_scenario: dict) -> str:
    head = ["scenario", "attack events", "monitor P", "R", "F1", "delay median (samples)",
            "false alarms / honest device-day", "same, groups within the bars", "best baseline (F1)", "sets found",
            "false collusion alerts",
            "first alert typed right: faults / attacks", "consensus bias: monitor / median",
            "learner damage: guarded / unguarded"]
    rows = []
    for name, agg in per_scenario.items():
        m = agg["detectors"][MONITOR]
        others = [(n, s["f1"]) for n, s in agg["detectors"].items() if n != MONITOR and s["f1"] == s["f1"]]
        best = max(others, key=lambda x: x[1], default=(None, float("nan")))
        c = agg["collusion"]
        cons = agg["consensus"]
        lr = agg["learner"]
        rows.append([name, str(m["attack_events"]), report._f(m["precision"]), report._f(m["recall"]),
                     report._f(m["f1"]), report._f(m["delay_median_samples"], 1),
                     report._f(m["fa_per_device_day_honest"], 3),
                     report._f(m.get("fa_per_device_day_honest_in_scope"), 3),
                     f"{best[0]} ({report._f(best[1])})" if best[0] else "–",
                     f"{c['sets_found']}/{c['sets']}" if c["sets"] else "–",
                     str(c["false_collusion_alerts"]),
                     _typed((agg.get("alert_types") or {}).get("totals") or {}),
                     f"{report._f(cons.get(MONITOR, {}).get('bias_sigma'), 3)} / "
                     f"{report._f(cons.get('median', {}).get('bias_sigma'), 3)}" if cons else "–",
                     f"{report._f(lr.get('guarded_vs_clean'), 2, pct=True)} / "
                     f"{report._f(lr.get('unguarded_vs_clean'), 2, pct=True)}" if lr else "–"])
    return report._table(head, rows)


def _typed(totals: dict) -> str:
    """``right/typed`` for benign faults and single-device attacks (– where a scenario has none)."""
    part = lambda t: f"{t['right']}/{t['typed_events']}" if t and t.get("typed_events") else "–"  # noqa: E731
    return f"{part(totals.get('fault'))} / {part(totals.get('attack'))}"


def _sweep_table(cells: list[dict]) -> str:
    ests = list(cells[0]["bias"]) if cells else []
    head = ["fraction", "offset (σ)"] + ests
    rows = [[f"{c['fraction']:.0%}", f"{c['offset']:g}"] + [report._f(c["bias"].get(e), 3) for e in ests]
            for c in cells]
    return report._table(head, rows)
