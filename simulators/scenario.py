"""Scenario description: the world, the fleet and the attacks, as pydantic models.

>>> s = Scenario(groups=2, devices_per_group=3, samples=10)
>>> s.group_name(1), s.device_id(1, 2)
('site-01/temperature', 'site-01-dev-002')
>>> try:
...     AttackSpec(type="bias", rate=1.0)
... except ValueError as exc:
...     print("bias takes no rate" in str(exc))
True
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.attacks import KINDS, resolve_params

PARAM_FIELDS = ("magnitude", "rate", "factor", "lag", "probability", "gap", "period", "duty",
                "hour_start", "hour_end")
STATUSES = ("attack", "fault", "benign_event")


class SignalParams(BaseModel):
    """The physical world shared by a group, and the devices' imperfections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_level: float = 20.0
    group_level_sigma: float = Field(2.0, ge=0, description="spread of the per-group level")
    daily_amplitude: float = Field(3.0, ge=0)
    daily_peak_hour: float = Field(15.0, ge=0, lt=24, description="UTC hour of the daily maximum")
    weather_sigma: float = Field(1.0, ge=0, description="stationary std of the AR(1) weather")
    weather_tau_seconds: float = Field(6 * 3600, gt=0, description="AR(1) correlation time")
    calibration_sigma: float = Field(0.3, ge=0, description="std of the per-device offset")
    noise_sigma: float = Field(0.2, gt=0, description="base measurement noise σ")
    noise_spread: tuple[float, float] = Field((0.5, 1.5), description="device σ = noise_sigma × U(lo, hi)")
    # --- optional realism (all off by default) ---
    slow_cycles: tuple[tuple[float, float], ...] = Field(
        (), description="extra (period_days, amplitude) cosines shared by all groups, random phase")
    regional_fraction: float = Field(0.0, ge=0, le=1, description="weather variance share common to all groups")
    neighbour_scale: float = Field(0.0, ge=0, description="weather correlation length, in group indices")
    front_rate_per_day: float = Field(0.0, ge=0, description="weather fronts per day (Poisson)")
    front_sigma: float = Field(2.0, ge=0, description="std of a front's step")
    front_rise_minutes: float = Field(30.0, gt=0, description="time for a front's step to build up")
    front_relax_hours: float = Field(12.0, gt=0, description="time constant of a front's relaxation")
    front_sweep_minutes: float = Field(0.0, ge=0, description="arrival delay of a front per group index")
    drift_sigma: float = Field(0.0, ge=0, description="std of the per-device calibration drift, per day (honest)")

    @model_validator(mode="after")
    def _spread_ok(self) -> SignalParams:
        lo, hi = self.noise_spread
        if not 0 < lo <= hi:
            raise ValueError("noise_spread must satisfy 0 < lo <= hi")
        if any(period <= 0 for period, _ in self.slow_cycles):
            raise ValueError("slow_cycles periods must be positive")
        return self


class DeliveryParams(BaseModel):
    """How honest messages get lost, repeated, delayed and mis-stamped (all off by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dropout_probability: float = Field(0.0, ge=0, lt=1, description="each sample lost independently")
    gap_rate_per_day: float = Field(0.0, ge=0, description="outages per device and day (Poisson)")
    gap_mean_seconds: float = Field(1800.0, gt=0, description="mean outage length (exponential)")
    duplicate_probability: float = Field(0.0, ge=0, lt=1, description="a sent reading is sent again, identical")
    late_probability: float = Field(0.0, ge=0, lt=1, description="a reading is sent 1..late_max_samples ticks late")
    late_max_samples: int = Field(5, ge=1, description="bound on lateness (and on a duplicate's extra delay)")
    clock_skew_seconds: float = Field(0.0, ge=0, description="per-device constant ts offset U(-s, s)")

    @property
    def active(self) -> bool:
        return any((self.dropout_probability, self.gap_rate_per_day, self.duplicate_probability,
                    self.late_probability, self.clock_skew_seconds))


class AttackSpec(BaseModel):
    """One attack, benign fault or benign correlated event on devices of one group.

    Targets: ``devices`` (device ids or 0-based indices in ``group``) or
    ``count`` devices (or ``fraction`` of the group) drawn by seed; ``group``
    (index or name) or drawn by seed.  ``sybil`` creates ``count`` new devices.
    Active for samples ``start <= i < end`` (``end`` None or past the run: to the end).
    ``status`` defaults to the kind's (``attack``; ``fault`` for battery/restart;
    ``benign_event`` for sun/door).  Parameters left None take the kind's
    defaults (`simulators.attacks.KINDS`); magnitudes are in units of σ.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    status: Literal["attack", "fault", "benign_event"] = "attack"
    group: int | str | None = None
    devices: tuple[int | str, ...] | None = None
    count: int | None = Field(None, ge=1)
    fraction: float | None = Field(None, gt=0, le=1, description="count = round(fraction × devices_per_group)")
    start: int = Field(0, ge=0)
    end: int | None = None
    name: str | None = Field(None, description="set id (default collusion-<k>, sybil-<k>, event-<k>)")
    source: int | str | None = Field(None, description="replay_other: device copied (id, or index in group)")
    magnitude: float | None = None
    rate: float | None = None
    factor: float | None = None
    lag: int | None = None
    probability: float | None = None
    gap: int | None = None
    period: int | None = None
    duty: float | None = None
    hour_start: float | None = None
    hour_end: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("status") is None and data.get("type") in KINDS:
            data = {**data, "status": KINDS[data["type"]].statuses[0]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> AttackSpec:
        kind = KINDS.get(self.type)
        if kind is None:
            raise ValueError(f"unknown attack type {self.type!r} (known: {', '.join(KINDS)})")
        if self.status not in kind.statuses:
            raise ValueError(f"{self.type} cannot have status {self.status!r} ({', '.join(kind.statuses)})")
        if kind.needs_end and self.end is None:
            raise ValueError(f"{self.type} needs an end")
        if kind.creates_devices and self.devices is not None:
            raise ValueError(f"{self.type} creates new devices: give count, not devices")
        if self.source is not None and kind.name != "replay_other":
            raise ValueError(f"{self.type} takes no source")
        if self.fraction is not None and (self.count is not None or self.devices is not None):
            raise ValueError("give fraction, count or devices, not several")
        for name in PARAM_FIELDS:
            if getattr(self, name) is not None and name not in kind.defaults:
                raise ValueError(f"{self.type} takes no {name} (its parameters: "
                                 f"{', '.join(kind.defaults) or 'none'})")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be greater than start")
        if self.devices is not None and self.count is not None and self.count != len(self.devices):
            raise ValueError("give devices or count, not both")
        if self.devices is not None and len(set(self.devices)) != len(self.devices):
            raise ValueError("devices must be distinct")
        if kind.check is not None:
            kind.check(resolve_params(self), self.start)
        return self


class Scenario(BaseModel):
    """A whole simulated run: fleet layout, timing, physics and attacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    groups: int = Field(4, ge=1)
    devices_per_group: int = Field(10, ge=1)
    interval_seconds: float = Field(60.0, gt=0, description="event-time spacing between samples")
    start_ts: float = 1_767_225_600.0
    samples: int = Field(1440, ge=1)
    ts_jitter_seconds: float = Field(0.0, ge=0, description="per-reading event-time jitter U[0, j)")
    quantity: str = Field("temperature", pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    unit: str | None = "degC"
    signal: SignalParams = SignalParams()
    delivery: DeliveryParams = DeliveryParams()
    attacks: tuple[AttackSpec, ...] = ()
    seed: int = Field(0, ge=0)
    meta: dict[str, Any] = Field(default_factory=dict, description="free-form notes, ignored by the simulator "
                                 "(scenario files: suite, seeds, description; sweep cells: fraction, offset)")

    @model_validator(mode="after")
    def _attacks_fit(self) -> Scenario:
        if self.ts_jitter_seconds >= self.interval_seconds:
            raise ValueError("ts_jitter_seconds must be below interval_seconds (keeps ts ordered)")
        if self.delivery.clock_skew_seconds >= self.interval_seconds:
            raise ValueError("delivery.clock_skew_seconds must be below interval_seconds")
        for i, spec in enumerate(self.attacks):
            try:
                if spec.start >= self.samples:
                    raise ValueError(f"start {spec.start} >= samples {self.samples}")
                if spec.group is not None:
                    self.group_index(spec.group)
                if spec.devices is not None:
                    self.resolve_devices(spec)
                count = self.target_count(spec)
                if count > self.devices_per_group and not KINDS[spec.type].creates_devices:
                    raise ValueError(f"count {count} > devices_per_group {self.devices_per_group}")
                if spec.source is not None:
                    self.resolve_source(spec)
            except ValueError as exc:
                raise ValueError(f"attack {i} ({spec.type}): {exc}") from None
        return self

    def __hash__(self) -> int:                         # ``meta`` is a dict: hash the whole document
        return hash(self.model_dump_json())

    def target_count(self, spec: AttackSpec) -> int:
        """Number of devices ``spec`` targets (or creates)."""
        if spec.devices is not None:
            return len(spec.devices)
        if spec.fraction is not None:
            return max(1, round(spec.fraction * self.devices_per_group))
        return spec.count or KINDS[spec.type].default_count

    def resolve_source(self, spec: AttackSpec) -> int | None:
        """Global row of a ``replay_other`` spec's explicit source device (None: drawn by seed)."""
        if spec.source is None:
            return None
        dpg = self.devices_per_group
        if isinstance(spec.source, str):
            ids = [self.device_id(g, d) for g in range(self.groups) for d in range(dpg)]
            if spec.source not in ids:
                raise ValueError(f"unknown source device {spec.source!r}")
            return ids.index(spec.source)
        if spec.group is None:
            raise ValueError("a source index needs a group")
        if not 0 <= spec.source < dpg:
            raise ValueError(f"source index {spec.source} out of range 0..{dpg - 1}")
        return self.group_index(spec.group) * dpg + spec.source

    # --- naming -----------------------------------------------------------
    @property
    def n_devices(self) -> int:
        return self.groups * self.devices_per_group

    def group_name(self, g: int) -> str:
        return f"site-{g:02d}/{self.quantity}"

    def device_id(self, g: int, d: int) -> str:
        return f"site-{g:02d}-dev-{d:03d}"

    def group_index(self, group: int | str) -> int:
        """Index of a group given by index or name."""
        if isinstance(group, str):
            names = [self.group_name(g) for g in range(self.groups)]
            if group not in names:
                raise ValueError(f"unknown group {group!r}")
            return names.index(group)
        if not 0 <= group < self.groups:
            raise ValueError(f"group index {group} out of range 0..{self.groups - 1}")
        return group

    def resolve_devices(self, spec: AttackSpec) -> tuple[int, np.ndarray]:
        """(group index, sorted global device indices) of explicitly named targets."""
        dpg = self.devices_per_group
        ids = {self.device_id(g, d): g * dpg + d for g in range(self.groups) for d in range(dpg)}
        g = None if spec.group is None else self.group_index(spec.group)
        rows = []
        for dev in spec.devices or ():
            if isinstance(dev, str):
                if dev not in ids:
                    raise ValueError(f"unknown device {dev!r}")
                row = ids[dev]
            else:
                if g is None:
                    raise ValueError("device indices need a group")
                if not 0 <= dev < dpg:
                    raise ValueError(f"device index {dev} out of range 0..{dpg - 1}")
                row = g * dpg + dev
            g = row // dpg if g is None else g
            if row // dpg != g:
                raise ValueError("all devices of one attack must be in one group")
            rows.append(row)
        if len(set(rows)) != len(rows):
            raise ValueError("devices must be distinct")
        return g, np.array(sorted(rows), dtype=np.intp)
