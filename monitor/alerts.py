"""Alert identity and construction: stable ids, event times from window indices."""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from monitor.schema import Alert


def alert_id(kind: str, type_: str, group: str, devices: Iterable[str], onset_ts: float) -> str:
    """A stable id: the same deviation re-raised (redelivery, restart) gets the same id.

    >>> alert_id("device", "bias", "g", ["b", "a"], 60.0) == alert_id("device", "bias", "g", ["a", "b"], 60.0)
    True
    """
    text = "\x1f".join([kind, type_, group, ",".join(sorted(devices)), f"{onset_ts:.3f}"])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def make_alert(*, alert_id: str, state: str, kind: str, type_: str, group: str, devices: list[str],
               onset_ts: float, ts: float, score: float, evidence: dict[str, Any]) -> Alert:
    return Alert(alert_id=alert_id, state=state, kind=kind, type=type_, group=group, devices=devices,
                 onset_ts=float(onset_ts), ts=float(ts), score=round(float(score), 4), evidence=evidence)
