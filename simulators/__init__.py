"""Fake IoT sensor fleet: honest physics, lying devices, colluding sets, ground truth.

Scenarios come from presets (`preset`, `sweep_scenarios`) or files
(`load_scenario`, `load_suite`; see scenarios/README.md).  A `FleetSimulator`
gives the readings in sending order, the ground truth (`labels`), the
arrays behind them (``values`` with NaN for unsent samples, ``ts``,
``true_signal``, ``sigmas``) and its `clean_twin`; `to_eval_data` hands a run
to the evaluation harness.

>>> from simulators import FleetSimulator, preset
>>> sim = FleetSimulator(preset("demo", samples=400), seed=1)
>>> len(sim.device_ids), sim.groups[0], sum(r["status"] == "attack" for r in sim.labels())
(40, 'site-00/temperature', 4)
"""

from simulators.attacks import KINDS, AttackKind, Context, Placement, register
from simulators.engine import FleetSimulator, Tick
from simulators.evaluation import to_eval_data
from simulators.files import load_scenario, load_suite
from simulators.presets import PRESETS, preset, sweep_scenarios
from simulators.scenario import AttackSpec, DeliveryParams, Scenario, SignalParams
from simulators.writers import write_jsonl, write_labels

__all__ = [
    "KINDS", "PRESETS", "AttackKind", "AttackSpec", "Context", "DeliveryParams", "FleetSimulator", "Placement",
    "Scenario", "SignalParams", "Tick", "load_scenario", "load_suite", "preset", "register", "sweep_scenarios",
    "to_eval_data", "write_jsonl", "write_labels",
]
