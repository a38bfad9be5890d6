"""What the harness evaluates: one recorded fleet run with its ground truth.

Both the simulator and real data sets with injected attacks (Beijing) are
turned into an `EvalData`, so every detector and baseline is scored on the
same arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from monitor.consensus import MAD_TO_SIGMA, nanmedian_rows

#: statuses a ground-truth record can have
STATUSES = ("honest", "fault", "attack", "benign_event")


@dataclass
class EvalData:
    """A fleet run: readings (devices x samples), the world without the attacks, and the truth.

    ``labels`` holds one record per labelled interval: ``device_id``, ``group``,
    ``status`` (one of STATUSES), ``type`` (e.g. ``bias``, ``collusion``,
    ``stuck``; None for honest), ``start_ts``, ``end_ts`` (None: to the end),
    ``collusion_set`` (set id or None), ``params``. A device with no interval
    has one ``honest`` record.
    """

    name: str
    interval: float                     # seconds between a device's samples
    device_ids: list[str]               # D
    groups: list[str]                   # G
    device_group: np.ndarray            # (D,) group index of each device
    ts: np.ndarray                      # (D, T) event time of each sample
    values: np.ndarray                  # (D, T) readings as sent (NaN: no reading)
    sigma: np.ndarray                   # (D,) honest noise sigma of each device (the unit of bias and RMSE)
    labels: list[dict]
    clean_values: np.ndarray | None = None   # (D, T) the same world with no attack (None if unknown)
    truth: np.ndarray | None = None          # (G, T) the true signal of each group (None for real data)
    emission: Callable[[], Iterator[dict]] | None = None  # readings in the order sent (duplicates, late ones)
    meta: dict = field(default_factory=dict)

    @property
    def n_devices(self) -> int:
        return len(self.device_ids)

    @property
    def n_samples(self) -> int:
        return self.values.shape[1]

    def readings(self) -> Iterator[dict]:
        """Readings in the order they were sent: the recorded emission order if known,
        else sample by sample (every device's sample 0, then 1, ...), skipping gaps."""
        if self.emission is not None:
            yield from self.emission()
            return
        groups = [self.groups[g] for g in self.device_group]
        for t in range(self.n_samples):
            for d in np.flatnonzero(~np.isnan(self.values[:, t])):
                yield {"device_id": self.device_ids[d], "group": groups[d], "ts": float(self.ts[d, t]),
                       "value": float(self.values[d, t])}

    def group_matrix(self, g: int, clean: bool = False) -> np.ndarray:
        """(T, D_g) readings of group ``g`` (sample-aligned), NaN where missing."""
        src = self.clean_values if clean else self.values
        if src is None:
            raise ValueError(f"{self.name}: no clean twin of the readings")
        return src[self.device_group == g].T

    def group_devices(self, g: int) -> list[str]:
        return [self.device_ids[d] for d in np.flatnonzero(self.device_group == g)]


def residual_sigma(values: np.ndarray, device_group: np.ndarray) -> np.ndarray:
    """Each device's robust sigma of its deviation from its group's median, sample by sample
    (for recorded data, where no true noise level is known).

    A coarse resolution can make a MAD 0 (pressure in 0.1 hPa steps): the result is floored at a
    quarter of the group's typical sigma.
    """
    sigma = np.empty(len(values))
    for g in np.unique(device_group):
        idx = np.flatnonzero(device_group == g)
        med, _ = nanmedian_rows(values[idx].T)             # per sample, across devices
        dev = values[idx] - med
        centre, _ = nanmedian_rows(dev)                    # per device, across samples
        mad, _ = nanmedian_rows(np.abs(dev - centre[:, None]))
        raw = MAD_TO_SIGMA * mad
        typical = float(np.median(raw[np.isfinite(raw)])) if np.isfinite(raw).any() else 0.0
        sigma[idx] = np.maximum(np.nan_to_num(raw), 0.25 * typical if typical > 0 else 1e-6)
    return sigma
