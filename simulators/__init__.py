"""Fake IoT sensor fleet: honest physics, lying devices, colluding sets, ground truth.

>>> from simulators import FleetSimulator, preset
>>> sim = FleetSimulator(preset("demo", samples=400), seed=1)
>>> len(sim.device_ids), sim.groups[0], sum(r["status"] == "attack" for r in sim.labels())
(40, 'site-00/temperature', 4)
"""

from simulators.attacks import KINDS, AttackKind, Placement, register
from simulators.engine import FleetSimulator, Tick
from simulators.presets import PRESETS, preset
from simulators.scenario import AttackSpec, Scenario, SignalParams
from simulators.writers import write_jsonl, write_labels

__all__ = [
    "KINDS", "PRESETS", "AttackKind", "AttackSpec", "FleetSimulator", "Placement", "Scenario",
    "SignalParams", "Tick", "preset", "register", "write_jsonl", "write_labels",
]
