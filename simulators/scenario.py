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

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.attacks import KINDS, resolve_params

PARAM_FIELDS = ("magnitude", "rate", "factor", "lag", "probability")


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

    @model_validator(mode="after")
    def _spread_ok(self) -> SignalParams:
        lo, hi = self.noise_spread
        if not 0 < lo <= hi:
            raise ValueError("noise_spread must satisfy 0 < lo <= hi")
        return self


class AttackSpec(BaseModel):
    """One attack (or benign fault) on one or more devices of one group.

    Targets: ``devices`` (device ids or 0-based indices in ``group``) or
    ``count`` devices drawn by seed; ``group`` (index or name) or drawn by seed.
    Active for samples ``start <= i < end`` (``end`` None or past the run: to the end).
    Parameters left None take the kind's defaults (`simulators.attacks.KINDS`);
    magnitudes are in units of the target device's σ.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    status: Literal["attack", "fault"] = "attack"
    group: int | str | None = None
    devices: tuple[int | str, ...] | None = None
    count: int | None = Field(None, ge=1)
    start: int = Field(0, ge=0)
    end: int | None = None
    name: str | None = Field(None, description="collusion set id (default collusion-<k>)")
    magnitude: float | None = None
    rate: float | None = None
    factor: float | None = None
    lag: int | None = None
    probability: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AttackSpec:
        kind = KINDS.get(self.type)
        if kind is None:
            raise ValueError(f"unknown attack type {self.type!r} (known: {', '.join(KINDS)})")
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
    attacks: tuple[AttackSpec, ...] = ()
    seed: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _attacks_fit(self) -> Scenario:
        if self.ts_jitter_seconds >= self.interval_seconds:
            raise ValueError("ts_jitter_seconds must be below interval_seconds (keeps ts ordered)")
        for i, spec in enumerate(self.attacks):
            try:
                if spec.start >= self.samples:
                    raise ValueError(f"start {spec.start} >= samples {self.samples}")
                if spec.group is not None:
                    self.group_index(spec.group)
                if spec.devices is not None:
                    self.resolve_devices(spec)
                if (spec.count or 1) > self.devices_per_group:
                    raise ValueError(f"count {spec.count} > devices_per_group {self.devices_per_group}")
            except ValueError as exc:
                raise ValueError(f"attack {i} ({spec.type}): {exc}") from None
        return self

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
