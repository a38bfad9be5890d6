"""Named scenarios.  Targets are drawn by seed (never overlapping), so presets
stay valid when ``groups``/``devices_per_group``/``seed`` are overridden.

>>> s = preset("demo", groups=6, seed=3)
>>> s.name, s.groups, s.devices_per_group, s.seed, len(s.attacks)
('demo', 6, 10, 3, 2)
>>> cells = sweep_scenarios(fractions=(0, .25), offsets=(.5, 3)); [c.name for c in cells]
['sweep-f0.00-o0.50', 'sweep-f0.00-o3.00', 'sweep-f0.25-o0.50', 'sweep-f0.25-o3.00']
>>> len(cells[0].attacks), len(cells[3].attacks), cells[3].attacks[0].count
(0, 4, 5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simulators.scenario import AttackSpec, DeliveryParams, Scenario, SignalParams

#: an honest world with every natural imperfection switched on (used by the new presets and files)
REALISTIC_SIGNAL = SignalParams(slow_cycles=((7.0, 1.0),), regional_fraction=0.4, neighbour_scale=1.5,
                                front_rate_per_day=0.7, front_sigma=1.5, front_sweep_minutes=10.0,
                                drift_sigma=0.02)
REALISTIC_DELIVERY = DeliveryParams(dropout_probability=0.01, gap_rate_per_day=0.3, gap_mean_seconds=1200.0,
                                    duplicate_probability=0.005, late_probability=0.01, late_max_samples=5,
                                    clock_skew_seconds=3.0)

PRESETS: dict[str, Scenario] = {
    "clean": Scenario(name="clean", groups=4, devices_per_group=10, samples=1440),
    "demo": Scenario(
        name="demo", groups=4, devices_per_group=10, samples=1440,
        attacks=(
            AttackSpec(type="bias", count=1, start=200, magnitude=5.0),
            AttackSpec(type="collusion", name="collusion-0", count=3, start=300, magnitude=4.0),
        ),
    ),
    "mixed": Scenario(
        name="mixed", groups=8, devices_per_group=10, samples=1440,
        attacks=(
            AttackSpec(type="bias", start=200, magnitude=4.0),
            AttackSpec(type="drift", start=250, rate=0.02),
            AttackSpec(type="stuck", start=300, end=900),
            AttackSpec(type="noise", start=350, factor=3.0),
            AttackSpec(type="replay", start=400, lag=60),
            AttackSpec(type="spike", start=200, magnitude=8.0, probability=0.02),
            AttackSpec(type="collusion", name="collusion-0", count=3, start=450, magnitude=3.0, rate=0.005),
        ),
    ),
    "realistic": Scenario(
        name="realistic", groups=6, devices_per_group=20, samples=1440, ts_jitter_seconds=2.0,
        signal=REALISTIC_SIGNAL, delivery=REALISTIC_DELIVERY,
        attacks=(
            AttackSpec(type="stuck", status="fault", start=300, end=500),
            AttackSpec(type="battery", start=400, rate=0.004),
            AttackSpec(type="restart", start=600, gap=15, magnitude=1.0),
            AttackSpec(type="sun", count=5, start=500, end=740, magnitude=3.0),
            AttackSpec(type="door", count=3, start=900, end=960, magnitude=-4.0),
        ),
    ),
    "zoo": Scenario(
        name="zoo", groups=8, devices_per_group=20, samples=1440, ts_jitter_seconds=2.0,
        signal=REALISTIC_SIGNAL, delivery=REALISTIC_DELIVERY,
        attacks=(
            AttackSpec(type="replay_other", start=300, lag=30),
            AttackSpec(type="intermittent", count=4, start=300, magnitude=3.0, period=120, duty=0.5),
            AttackSpec(type="camouflage", count=5, start=300, magnitude=3.0),
            AttackSpec(type="collusion", count=4, start=900, magnitude=0.5),          # a sleeper, in-spread
            AttackSpec(type="poison", count=5, start=0, magnitude=1.0, hour_start=2.0, hour_end=6.0),
            AttackSpec(type="sybil", count=10, start=700, magnitude=2.0),
            AttackSpec(type="battery", start=400),
            AttackSpec(type="sun", count=5, start=500, end=740),
        ),
    ),
}


def sweep_scenarios(fractions: Sequence[float] = (0, .05, .1, .2, .3, .4, .5),
                    offsets: Sequence[float] = (.25, .5, 1, 3, 10), *, groups: int = 4,
                    devices_per_group: int = 20, samples: int = 1440, start: int = 300,
                    seed: int = 0, **overrides: Any) -> list[Scenario]:
    """The collusion sweep: one scenario per (fraction, offset) cell, fraction-major.

    Every group of a cell holds one colluding set of round(fraction × devices_per_group)
    devices (named ``ring-<g>``) shifting together by ``offset`` σ from ``start``;
    fraction 0 is the honest baseline of the cell.  ``meta`` holds ``fraction``,
    ``offset`` and ``count``.  ``overrides`` go to every `Scenario`.
    """
    out = []
    for f in fractions:
        k = round(f * devices_per_group)
        for off in offsets:
            attacks = () if k == 0 else tuple(
                AttackSpec(type="collusion", group=g, count=k, start=start, magnitude=float(off), name=f"ring-{g}")
                for g in range(groups))
            out.append(Scenario.model_validate({
                "name": f"sweep-f{f:.2f}-o{off:.2f}", "groups": groups, "devices_per_group": devices_per_group,
                "samples": samples, "seed": seed, "attacks": attacks,
                "meta": {"fraction": float(f), "offset": float(off), "count": k}, **overrides}))
    return out


def preset(name: str, **overrides: Any) -> Scenario:
    """Preset ``name`` with fields overridden (e.g. groups, devices_per_group, samples, seed); revalidated."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return Scenario.model_validate({**PRESETS[name].model_dump(), **overrides})
