"""The product's wire contracts: a sensor `Reading` in, an `Alert` out.

>>> Reading.model_validate({"device_id": "d1", "group": "hall-a/temperature",
...                         "ts": "2026-01-01T00:00:00Z", "value": 21.5}).ts
1767225600.0
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

DEVICE_ID_PATTERN = r"^[A-Za-z0-9._:/-]{1,128}$"


def _to_epoch(value: Any) -> Any:
    """Accept seconds since the epoch or an RFC 3339 string with a time zone."""
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from exc
        if parsed.tzinfo is None:
            raise ValueError("RFC 3339 timestamp needs a time zone offset (e.g. Z)")
        return parsed.timestamp()
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class Reading(BaseModel):
    """One measurement of one device (a message value holds one or a JSON array)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    group: str = Field(min_length=1, max_length=256)
    ts: Annotated[float, BeforeValidator(_to_epoch)]
    value: float = Field(strict=True)
    quantity: str | None = Field(default=None, max_length=128)
    unit: str | None = Field(default=None, max_length=64)
    seq: int | None = Field(default=None, ge=0)

    _check_value = field_validator("value", "ts")(_finite)

    @field_validator("value", "ts", mode="before")
    @classmethod
    def _no_bool_or_string_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        return value


AlertState = Literal["firing", "resolved"]
AlertKind = Literal["device", "collusion", "learner", "input", "consensus"]


class Alert(BaseModel):
    """One alert event: raised (`firing`) or cleared (`resolved`)."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    state: AlertState
    kind: AlertKind
    type: str
    group: str
    devices: list[str]
    onset_ts: float
    ts: float
    score: float
    evidence: dict[str, Any] = Field(default_factory=dict)
