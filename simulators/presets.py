"""Named scenarios.  Targets are drawn by seed (never overlapping), so presets
stay valid when ``groups``/``devices_per_group``/``seed`` are overridden.

>>> s = preset("demo", groups=6, seed=3)
>>> s.name, s.groups, s.devices_per_group, s.seed, len(s.attacks)
('demo', 6, 10, 3, 2)
"""

from __future__ import annotations

from typing import Any

from simulators.scenario import AttackSpec, Scenario

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
}


def preset(name: str, **overrides: Any) -> Scenario:
    """Preset ``name`` with fields overridden (e.g. groups, devices_per_group, samples, seed); revalidated."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return Scenario.model_validate({**PRESETS[name].model_dump(), **overrides})
