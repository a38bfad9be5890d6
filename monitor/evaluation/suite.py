"""Sets of runs for the harness: scenario files and presets over seeds, the sweep, Beijing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from monitor.config import DetectionSettings
from monitor.evaluation.data import EvalData
from monitor.evaluation.runner import MONITOR, evaluate

SCENARIO_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def scenario_files(specs: list[str]) -> list[str]:
    """Expand directories into their scenario files; keep files and preset names as they are."""
    out: list[str] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir():
            out += sorted(str(f) for f in p.iterdir() if f.suffix.lower() in SCENARIO_SUFFIXES)
        else:
            out.append(spec)
    return out


def load(spec: str):
    """A `Scenario` from a preset name or a scenario file."""
    from simulators import PRESETS, load_scenario, preset

    if spec in PRESETS:
        return preset(spec)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"scenario {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a file")
    return load_scenario(path)


def simulated(specs: list[str], seeds: list[int]) -> Iterator[tuple[EvalData, EvalData]]:
    """(attacked, clean twin) for every scenario and seed."""
    from simulators import FleetSimulator, to_eval_data

    for spec in scenario_files(specs):
        scenario = load(spec)
        for seed in seeds:
            sim = FleetSimulator(scenario, seed=seed)
            data = to_eval_data(sim)
            data.name = f"{scenario.name}"
            data.meta = {**data.meta, "scenario": spec, "seed": seed}
            yield data, to_eval_data(sim.clean_twin())


def run_all(pairs, settings: DetectionSettings, baselines: dict | None, consensus: dict | None,
            say: Callable[[str], None]) -> list[dict]:
    results = []
    for data, clean in pairs:
        results.append(evaluate(data, settings, clean=clean, device_baselines=baselines,
                                consensus_baselines=consensus, progress=say))
    return results


def sweep_cells(fractions, offsets, seeds: list[int], settings: DetectionSettings, consensus: dict,
                say: Callable[[str], None]) -> list[dict]:
    """Consensus bias of every estimator for each (colluding fraction, offset) cell."""
    from simulators import FleetSimulator, sweep_scenarios, to_eval_data

    cells = []
    for scenario in sweep_scenarios(fractions=fractions, offsets=offsets):
        f, o = scenario.meta["fraction"], scenario.meta["offset"]
        rows = []
        for seed in seeds:
            sim = FleetSimulator(scenario, seed=seed)
            data, clean = to_eval_data(sim), to_eval_data(sim.clean_twin())
            say(f"sweep: fraction {f:.0%} offset {o:g} sigma seed {seed}")
            rows.append(evaluate(data, settings, clean=clean, device_baselines={}, consensus_baselines=consensus))
        bias = {}
        for est in [MONITOR, *consensus]:
            vals = [r["consensus"].get(est, {}).get("bias_sigma") for r in rows if r["consensus"]]
            vals = [v for v in vals if v is not None]
            bias[est] = sum(vals) / len(vals) if vals else float("nan")
        cells.append({"fraction": f, "offset": o, "bias": bias, "seeds": seeds})
    return cells
