"""Attack, benign fault and benign event effects, and where in the fleet they land.

An effect edits a block of device rows in place: ``x`` has shape
``(k, samples)`` (the emitted values of the ``k`` targeted devices so far),
the effect touches only columns ``start:stop`` and reads earlier columns when
it needs history (``stuck``, ``replay``).  Magnitudes are in units of the
device's own noise ``sigma`` (of the set's mean σ for shared kinds).  Kinds
registered with ``context=True`` also get a `Context` (the whole fleet so far,
times, the group, a source device).  A kind with a ``gate`` acts only on the
samples the gate opens (on/off attacks, chosen hours) and is labelled per
open interval.  New kinds register with `register`.

>>> x = np.zeros((1, 5)); KINDS["drift"].apply(x, 2, 5, np.array([2.0]), {"rate": 0.5}, None)
>>> x.tolist()
[[0.0, 0.0, 1.0, 2.0, 3.0]]
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from simulators.scenario import AttackSpec, Scenario

Effect = Callable[..., None]   # (x, start, stop, sigma, params, rng[, ctx]) -> None, edits x in place
Check = Callable[[Mapping[str, float], int], None]
Gate = Callable[[Mapping[str, float], np.ndarray, int], np.ndarray]   # (params, times[start:stop], start) -> bool


@dataclass(frozen=True)
class Context:
    """What a context effect may read besides its own rows."""

    values: np.ndarray          # (devices, samples) the whole fleet so far (read only)
    times: np.ndarray           # (samples,) scheduled event times
    rows: np.ndarray            # the targets' global rows (sorted)
    group_rows: np.ndarray      # the target group's original devices
    lead: int                   # the first target drawn/listed (camouflage member)
    source: int | None          # replay_other's source row


@dataclass(frozen=True)
class AttackKind:
    """One kind of misbehaviour: its parameters (with defaults) and its effect.

    ``shared`` kinds act once on the whole target set (collusion, events);
    the others act on each target independently.  ``statuses``: allowed
    statuses, the first is the default.  ``creates_devices``: the targets are
    new device ids (sybil).  ``needs_end``: the spec must give an ``end``.
    """

    name: str
    apply: Effect
    defaults: Mapping[str, float] = field(default_factory=dict)
    shared: bool = False
    default_count: int = 1
    check: Check | None = None
    statuses: tuple[str, ...] = ("attack", "fault")
    context: bool = False
    gate: Gate | None = None
    creates_devices: bool = False
    needs_end: bool = False


KINDS: dict[str, AttackKind] = {}


def register(name: str, *, shared: bool = False, default_count: int = 1, check: Check | None = None,
             statuses: tuple[str, ...] = ("attack", "fault"), context: bool = False, gate: Gate | None = None,
             creates_devices: bool = False, needs_end: bool = False,
             **defaults: float) -> Callable[[Effect], Effect]:
    """Decorator: register ``fn`` as the effect of attack kind ``name``."""

    def deco(fn: Effect) -> Effect:
        KINDS[name] = AttackKind(name, fn, dict(defaults), shared, default_count, check, statuses, context,
                                 gate, creates_devices, needs_end)
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
          statuses=("attack",), magnitude=3.0, rate=0.0)
def _collusion(x, start, stop, sigma, p, rng):
    """All members shift by the same offset: (``magnitude`` + ``rate``·n) × the set's mean σ."""
    steps = np.arange(1, stop - start + 1)
    x[:, start:stop] += sigma.mean() * (p["magnitude"] + p["rate"] * steps)


# --- more single-device attacks and benign faults -----------------------------

def _all(*checks: Check) -> Check:
    def check(params: Mapping[str, float], start: int) -> None:
        for c in checks:
            c(params, start)
    return check


def _whole(name: str, lo: int) -> Check:
    def check(params: Mapping[str, float], start: int) -> None:
        v = params[name]
        if v < lo or v != int(v):
            raise ValueError(f"{name} must be an integer >= {lo}")
    return check


def _lag_fits(params: Mapping[str, float], start: int) -> None:
    if start < params["lag"]:
        raise ValueError(f"replay_other needs start >= lag ({start} < {int(params['lag'])})")


@register("replay_other", check=_all(_whole("lag", 0), _lag_fits), context=True, lag=30)
def _replay_other(x, start, stop, sigma, p, rng, ctx):
    """Re-send another device's (``source``) readings of ``lag`` samples earlier (0: mirror it live),
    as they are when this effect applies (specs apply in order)."""
    lag = int(p["lag"])
    x[:, start:stop] = ctx.values[ctx.source, start - lag:stop - lag]


@register("battery", check=_positive("rate"), statuses=("fault", "attack"), rate=0.005)
def _battery(x, start, stop, sigma, p, rng):
    """A weakening battery: extra Gaussian noise whose std grows by ``rate`` σ per sample."""
    steps = np.arange(1, stop - start + 1)
    x[:, start:stop] += p["rate"] * sigma[:, None] * steps * rng.standard_normal((x.shape[0], stop - start))


@register("restart", check=_whole("gap", 1), statuses=("fault", "attack"), gap=10, magnitude=0.0)
def _restart(x, start, stop, sigma, p, rng):
    """Off for ``gap`` samples (nothing sent), then resumes with a calibration jump of ``magnitude`` σ.

    The sequence numbers restart at 0 on resume (done by the engine).
    """
    resume = min(start + int(p["gap"]), stop)
    x[:, start:resume] = np.nan
    x[:, resume:stop] += p["magnitude"] * sigma[:, None]


# --- colluding sets ---------------------------------------------------------------

def _duty_check(params: Mapping[str, float], start: int) -> None:
    _whole("period", 2)(params, start)
    if not 0 < params["duty"] < 1 or round(params["duty"] * params["period"]) < 1:
        raise ValueError("duty must be in (0, 1) and leave at least one sample on per period")


def _duty_gate(params: Mapping[str, float], times: np.ndarray, start: int) -> np.ndarray:
    """On for the first round(duty × period) samples of every period, counted from ``start``."""
    on = max(1, round(params["duty"] * params["period"]))
    return np.arange(times.size) % int(params["period"]) < on


@register("intermittent", shared=True, default_count=3, check=_all(_nonzero("magnitude"), _duty_check),
          statuses=("attack",), gate=_duty_gate, magnitude=3.0, period=120, duty=0.5)
def _intermittent(x, start, stop, sigma, p, rng):
    """A colluding set shifting together by ``magnitude`` σ, on/off with ``period`` and ``duty``."""
    x[:, start:stop] += sigma.mean() * p["magnitude"]


@register("camouflage", shared=True, default_count=4, check=_nonzero("magnitude"), statuses=("attack",),
          context=True, magnitude=3.0, factor=1.0)
def _camouflage(x, start, stop, sigma, p, rng, ctx):
    """All members but one shift by δ = ``magnitude`` σ; the camouflage member (the lead) reports
    where they pull the group mean: mean of the other devices + ``factor`` × (k-1)·δ / n,
    plus a quarter of its own noise, so it sits right on the poisoned consensus."""
    k, n = len(ctx.rows), len(ctx.group_rows)
    delta = sigma.mean() * p["magnitude"]
    lead = int(np.searchsorted(ctx.rows, ctx.lead))
    others = np.setdiff1d(ctx.group_rows, ctx.rows)
    x[:, start:stop] += delta
    if others.size:
        block = ctx.values[others, start:stop]
        n_ok = np.sum(~np.isnan(block), axis=0)  # recorded data can have hours where no other device reported
        honest = np.divide(np.nansum(block, axis=0), n_ok, out=np.full(stop - start, np.nan), where=n_ok > 0)
    else:
        honest = x[lead, start:stop] - delta
    pull = p["factor"] * (k - 1) * delta / n
    x[lead, start:stop] = honest + pull + 0.25 * sigma[lead] * rng.standard_normal(stop - start)


def _hours_check(params: Mapping[str, float], start: int) -> None:
    a, b = params["hour_start"], params["hour_end"]
    if not (0 <= a < 24 and 0 <= b <= 24) or a == b:
        raise ValueError("hour_start, hour_end must be distinct hours in [0, 24]")


def _hours_gate(params: Mapping[str, float], times: np.ndarray, start: int) -> np.ndarray:
    """Open while the UTC hour of day is in [hour_start, hour_end) (wrapping past midnight)."""
    hour = (times % 86400.0) / 3600.0
    a, b = params["hour_start"], params["hour_end"]
    return (hour >= a) & (hour < b) if a < b else (hour >= a) | (hour < b)


@register("poison", shared=True, default_count=4, check=_all(_nonzero("magnitude"), _hours_check),
          statuses=("attack",), gate=_hours_gate, magnitude=1.0, hour_start=2.0, hour_end=6.0)
def _poison(x, start, stop, sigma, p, rng):
    """Learner poisoning: the set shifts by a plausible ``magnitude`` σ, but only in the chosen hours,
    so a model of the consensus by time of day learns a wrong value there."""
    x[:, start:stop] += sigma.mean() * p["magnitude"]


@register("sybil", shared=True, default_count=10, check=_nonzero("magnitude"), statuses=("attack",),
          creates_devices=True, magnitude=2.0)
def _sybil(x, start, stop, sigma, p, rng):
    """New device ids (honest-looking physics and noise) all shifted by ``magnitude`` σ;
    the engine makes them exist only for ``start <= i < end``."""
    x[:, start:stop] += sigma.mean() * p["magnitude"]


# --- benign correlated events ----------------------------------------------------------

@register("sun", shared=True, default_count=4, check=_nonzero("magnitude"), statuses=("benign_event",),
          needs_end=True, magnitude=3.0)
def _sun(x, start, stop, sigma, p, rng):
    """Sun on one wall: a smooth sin² bump peaking at ``magnitude`` σ, each device by 0.7–1.3 of it."""
    n = stop - start
    bump = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 2
    gain = rng.uniform(0.7, 1.3, x.shape[0])
    x[:, start:stop] += sigma.mean() * p["magnitude"] * gain[:, None] * bump


@register("door", shared=True, default_count=3, check=_nonzero("magnitude"), statuses=("benign_event",),
          needs_end=True, magnitude=-3.0)
def _door(x, start, stop, sigma, p, rng):
    """A door left open: quick change to ``magnitude`` σ (0.8–1.2 per device), plateau, quick recovery."""
    n = stop - start
    ramp = max(1, n // 10)
    i = np.arange(n)
    shape = np.minimum(1.0, np.minimum((i + 1) / ramp, (n - i) / ramp))
    gain = rng.uniform(0.8, 1.2, x.shape[0])
    x[:, start:stop] += sigma.mean() * p["magnitude"] * gain[:, None] * shape


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
    set_id: str | None        # colluding set (attacks) or event id (benign events)
    lead: int = -1            # first target drawn or listed
    source: int | None = None  # replay_other's source row

    def active(self, times: np.ndarray) -> np.ndarray:
        """Bool mask over ``start:stop``: where the effect is on (all True without a gate)."""
        if self.kind.gate is None:
            return np.ones(self.stop - self.start, dtype=bool)
        return self.kind.gate(self.params, times[self.start:self.stop], self.start)

    def runs(self, times: np.ndarray) -> list[tuple[int, int]]:
        """``[(first, stop), ...]`` sample ranges where the effect is on."""
        on = self.active(times).astype(np.int8)
        edges = np.diff(np.r_[0, on, 0])
        return [(self.start + int(a), self.start + int(b))
                for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]

    def apply(self, values: np.ndarray, sigma: np.ndarray, rng: np.random.Generator,
              times: np.ndarray | None = None, group_rows: np.ndarray | None = None) -> None:
        """Apply the effect in place to the full ``(devices, samples)`` matrix."""
        block = values[self.rows]
        args = [block, self.start, self.stop, sigma[self.rows], self.params, rng]
        if self.kind.context:
            args.append(Context(values, times, self.rows, group_rows, self.lead, self.source))
        before = block[:, self.start:self.stop].copy() if self.kind.gate is not None else None
        self.kind.apply(*args)
        if before is not None:
            off = ~self.active(times)
            block[:, self.start:self.stop][:, off] = before[:, off]
        values[self.rows] = block


def resolve_params(spec: AttackSpec) -> dict[str, Any]:
    """The spec's parameters with the kind's defaults filled in."""
    kind = KINDS[spec.type]
    return {name: (getattr(spec, name) if getattr(spec, name) is not None else default)
            for name, default in kind.defaults.items()}


def place_attacks(scenario: Scenario, rng: np.random.Generator,
                  aux: Callable[[str], np.random.Generator] | None = None) -> list[Placement]:
    """Resolve every attack of ``scenario`` onto devices.

    Explicit targets are used as given.  Otherwise the group is drawn among the
    groups with the fewest targeted devices so far and the devices among the
    untargeted ones there, so seed-chosen attacks never overlap.  Sybil devices
    get new rows after the fleet's, in spec order.  ``aux(name)`` gives the
    extra named streams (sybil groups, replay sources) so that ``rng`` draws
    exactly as before for the original kinds.
    """
    dpg = scenario.devices_per_group
    n_regular = scenario.groups * dpg
    taken = np.zeros(n_regular, dtype=bool)
    for spec in scenario.attacks:                     # explicit targets first
        if spec.devices is not None:
            g, rows = scenario.resolve_devices(spec)
            taken[rows] = True
    if aux is None:
        aux = lambda name: np.random.default_rng(zlib.crc32(name.encode()))  # noqa: E731 (standalone use)

    out: list[Placement] = []
    n_sets = n_sybils = n_events = 0
    n_new = 0
    for i, spec in enumerate(scenario.attacks):
        kind = KINDS[spec.type]
        count = scenario.target_count(spec)
        source = None
        if kind.creates_devices:
            g = (scenario.group_index(spec.group) if spec.group is not None
                 else int(aux(f"sybil-group-{i}").integers(scenario.groups)))
            rows = n_regular + n_new + np.arange(count)
            n_new += count
            lead = int(rows[0])
        elif spec.devices is not None:
            g, rows = scenario.resolve_devices(spec)
            lead = int(scenario.resolve_devices(spec.model_copy(update={"devices": spec.devices[:1]}))[1][0])
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
            drawn = rng.choice(pool, size=count, replace=False)
            lead = int(drawn[0])
            rows = np.sort(drawn)
        if not kind.creates_devices:
            taken[rows] = True
        if kind.name == "replay_other":
            source = scenario.resolve_source(spec)
            if source is None:
                group_rows = g * dpg + np.arange(dpg)
                others = np.setdiff1d(group_rows, rows)
                free = others[~taken[others]]
                pick = free if free.size else others
                if pick.size == 0:
                    raise ValueError(f"attack {i} (replay_other): no other device in group {g} to copy")
                source = int(aux(f"source-{i}").choice(pick))
        set_id = None
        if kind.shared and spec.status == "benign_event":
            set_id = spec.name or f"event-{n_events}"
            n_events += 1
        elif kind.creates_devices:
            set_id = spec.name or f"sybil-{n_sybils}"
            n_sybils += 1
        elif kind.shared:
            set_id = spec.name or f"collusion-{n_sets}"
            n_sets += 1
        stop = scenario.samples if spec.end is None else min(spec.end, scenario.samples)
        out.append(Placement(i, kind, spec.status, int(g), np.asarray(rows, dtype=np.intp),
                             spec.start, stop, stop == scenario.samples, resolve_params(spec), set_id,
                             lead, source))
    return out
