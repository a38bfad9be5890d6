"""Attack (and benign fault) effects, and where in the fleet they land.

An effect edits a block of device rows in place: ``x`` has shape
``(k, samples)`` (the emitted values of the ``k`` targeted devices so far),
the effect touches only columns ``start:stop`` and reads earlier columns when
it needs history (``stuck``, ``replay``).  Magnitudes are in units of the
device's own noise ``sigma``.  New kinds register with `register`.

>>> x = np.zeros((1, 5)); KINDS["drift"].apply(x, 2, 5, np.array([2.0]), {"rate": 0.5}, None)
>>> x.tolist()
[[0.0, 0.0, 1.0, 2.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from simulators.scenario import AttackSpec, Scenario

Effect = Callable[[np.ndarray, int, int, np.ndarray, Mapping[str, float], np.random.Generator], None]
Check = Callable[[Mapping[str, float], int], None]


@dataclass(frozen=True)
class AttackKind:
    """One kind of misbehaviour: its parameters (with defaults) and its effect.

    ``shared`` kinds act once on the whole target set with a common offset
    (collusion); the others act on each target independently.
    """

    name: str
    apply: Effect
    defaults: Mapping[str, float] = field(default_factory=dict)
    shared: bool = False
    default_count: int = 1
    check: Check | None = None


KINDS: dict[str, AttackKind] = {}


def register(name: str, *, shared: bool = False, default_count: int = 1,
             check: Check | None = None, **defaults: float) -> Callable[[Effect], Effect]:
    """Decorator: register ``fn`` as the effect of attack kind ``name``."""

    def deco(fn: Effect) -> Effect:
        KINDS[name] = AttackKind(name, fn, dict(defaults), shared, default_count, check)
        return fn

    return deco


def _nonzero(*names: str) -> Check:
    def check(params: Mapping[str, float], start: int) -> None:
        if all(params[n] == 0 for n in names):
            raise ValueError(f"{' or '.join(names)} must be non-zero")
    return check


def _replay_check(params: Mapping[str, float], start: int) -> None:
    lag = params["lag"]
    if lag < 1 or lag != int(lag):
        raise ValueError("replay lag must be a positive integer")
    if start < lag:
        raise ValueError(f"replay needs start >= lag ({start} < {int(lag)}): nothing to replay yet")


def _positive(name: str, upper: float | None = None) -> Check:
    def check(params: Mapping[str, float], start: int) -> None:
        v = params[name]
        if v <= 0 or (upper is not None and v > upper):
            raise ValueError(f"{name} must be in (0, {upper if upper is not None else 'inf'}]")
    return check


@register("bias", check=_nonzero("magnitude"), magnitude=4.0)
def _bias(x, start, stop, sigma, p, rng):
    """Constant offset of ``magnitude`` σ."""
    x[:, start:stop] += p["magnitude"] * sigma[:, None]


@register("drift", check=_nonzero("rate"), rate=0.02)
def _drift(x, start, stop, sigma, p, rng):
    """Linear ramp: ``rate`` σ per sample, already ``rate`` σ at the first sample."""
    steps = np.arange(1, stop - start + 1)
    x[:, start:stop] += p["rate"] * sigma[:, None] * steps


@register("stuck")
def _stuck(x, start, stop, sigma, p, rng):
    """Frozen at the last value sent before onset (the first value if ``start`` is 0)."""
    x[:, start:stop] = x[:, max(start - 1, 0), None]


@register("noise", check=_positive("factor"), factor=3.0)
def _noise(x, start, stop, sigma, p, rng):
    """Extra Gaussian noise with std ``factor`` σ."""
    x[:, start:stop] += p["factor"] * sigma[:, None] * rng.standard_normal((x.shape[0], stop - start))


@register("replay", check=_replay_check, lag=60)
def _replay(x, start, stop, sigma, p, rng):
    """Re-send what the device sent ``lag`` samples earlier (a loop of the pre-onset window)."""
    lag = int(p["lag"])
    src = start - lag + np.arange(stop - start) % lag
    x[:, start:stop] = x[:, src]


@register("spike", check=_positive("probability", 1.0), magnitude=8.0, probability=0.02)
def _spike(x, start, stop, sigma, p, rng):
    """With ``probability`` per sample, add ±``magnitude`` σ (random sign)."""
    shape = (x.shape[0], stop - start)
    hit = rng.random(shape) < p["probability"]
    sign = rng.choice(np.array([-1.0, 1.0]), size=shape)
    x[:, start:stop] += hit * sign * p["magnitude"] * sigma[:, None]


@register("collusion", shared=True, default_count=3, check=_nonzero("magnitude", "rate"),
          magnitude=3.0, rate=0.0)
def _collusion(x, start, stop, sigma, p, rng):
    """All members shift by the same offset: (``magnitude`` + ``rate``·n) × the set's mean σ."""
    steps = np.arange(1, stop - start + 1)
    x[:, start:stop] += sigma.mean() * (p["magnitude"] + p["rate"] * steps)


@dataclass(frozen=True)
class Placement:
    """An attack spec resolved onto concrete devices and sample indices."""

    spec_index: int
    kind: AttackKind
    status: str
    group: int
    rows: np.ndarray          # global device indices, sorted
    start: int
    stop: int                 # exclusive
    open_ended: bool          # lasts to the end of the run
    params: dict[str, Any]
    set_id: str | None

    def apply(self, values: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> None:
        """Apply the effect in place to the full ``(devices, samples)`` matrix."""
        block = values[self.rows]
        self.kind.apply(block, self.start, self.stop, sigma[self.rows], self.params, rng)
        values[self.rows] = block


def resolve_params(spec: AttackSpec) -> dict[str, Any]:
    """The spec's parameters with the kind's defaults filled in."""
    kind = KINDS[spec.type]
    return {name: (getattr(spec, name) if getattr(spec, name) is not None else default)
            for name, default in kind.defaults.items()}


def place_attacks(scenario: Scenario, rng: np.random.Generator) -> list[Placement]:
    """Resolve every attack of ``scenario`` onto devices.

    Explicit targets are used as given.  Otherwise the group is drawn among the
    groups with the fewest targeted devices so far and the devices among the
    untargeted ones there, so seed-chosen attacks never overlap.
    """
    dpg = scenario.devices_per_group
    taken = np.zeros(scenario.groups * dpg, dtype=bool)
    for spec in scenario.attacks:                     # explicit targets first
        if spec.devices is not None:
            g, rows = scenario.resolve_devices(spec)
            taken[rows] = True

    out: list[Placement] = []
    n_sets = 0
    for i, spec in enumerate(scenario.attacks):
        kind = KINDS[spec.type]
        count = spec.count or kind.default_count
        if spec.devices is not None:
            g, rows = scenario.resolve_devices(spec)
        else:
            if spec.group is not None:
                g = scenario.group_index(spec.group)
            else:
                free = (~taken).reshape(scenario.groups, dpg).sum(axis=1)
                used = dpg - free
                ok = np.flatnonzero(free >= count)
                if ok.size == 0:
                    raise ValueError(f"attack {i} ({spec.type}): no group has {count} untargeted devices")
                best = ok[used[ok] == used[ok].min()]
                g = int(rng.choice(best))
            pool = g * dpg + np.flatnonzero(~taken[g * dpg:(g + 1) * dpg])
            if pool.size < count:
                raise ValueError(f"attack {i} ({spec.type}): group {g} has only {pool.size} untargeted devices")
            rows = np.sort(rng.choice(pool, size=count, replace=False))
        taken[rows] = True
        set_id = None
        if kind.shared:
            set_id = spec.name or f"collusion-{n_sets}"
            n_sets += 1
        stop = scenario.samples if spec.end is None else min(spec.end, scenario.samples)
        out.append(Placement(i, kind, spec.status, int(g), np.asarray(rows, dtype=np.intp),
                             spec.start, stop, stop == scenario.samples, resolve_params(spec), set_id))
    return out
