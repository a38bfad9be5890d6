"""The honest physical world: true group signals, imperfect honest devices and their delivery.

Every optional piece (slow cycles, fronts, regional/neighbour correlation,
calibration drift, dropouts, gaps, duplicates, late messages, clock skew)
draws from its own named stream and is skipped entirely when off, so
scenarios without it are bit-for-bit what they were.

>>> daily_cycle(np.array([0.0, 43200.0]), amplitude=1.0, peak_hour=0.0).round(6).tolist()
[1.0, -1.0]
"""

from __future__ import annotations

import numpy as np

from collections.abc import Callable
from dataclasses import dataclass

from simulators.scenario import DeliveryParams, Scenario, SignalParams

Streams = Callable[[str], np.random.Generator]

DAY_SECONDS = 86400.0


def sample_times(scenario: Scenario) -> np.ndarray:
    """Scheduled event time of every sample index, shape ``(samples,)``."""
    return scenario.start_ts + scenario.interval_seconds * np.arange(scenario.samples)


def daily_cycle(ts: np.ndarray, amplitude: float, peak_hour: float) -> np.ndarray:
    """Cosine with a 24 h period of event time, maximal at ``peak_hour`` UTC."""
    phase = 2 * np.pi * (ts - peak_hour * 3600.0) / DAY_SECONDS
    return amplitude * np.cos(phase)


def weather(n_groups: int, samples: int, interval: float, params: SignalParams,
            rng: np.random.Generator) -> np.ndarray:
    """Independent stationary AR(1) per group, shape ``(n_groups, samples)``.

    The correlation time is set in event seconds, so the process does not
    depend on the sampling interval.
    """
    phi = np.exp(-interval / params.weather_tau_seconds)
    innov = params.weather_sigma * np.sqrt(1.0 - phi**2) * rng.standard_normal((n_groups, samples))
    out = np.empty((n_groups, samples))
    out[:, 0] = params.weather_sigma * rng.standard_normal(n_groups)
    for t in range(1, samples):             # vectorised over groups
        out[:, t] = phi * out[:, t - 1] + innov[:, t]
    return out


def neighbour_mix(w: np.ndarray, scale: float) -> np.ndarray:
    """Mix independent per-group processes with weights exp(-|g-k|/scale), rows of unit norm:
    each row keeps its variance and neighbouring groups become correlated.

    >>> m = neighbour_mix(np.eye(3), 1.0); bool(np.allclose((m**2).sum(axis=1), 1)), bool(m[0, 1] > m[0, 2])
    (True, True)
    """
    g = np.arange(w.shape[0])
    k = np.exp(-np.abs(g[:, None] - g[None, :]) / scale)
    k /= np.sqrt((k**2).sum(axis=1, keepdims=True))
    return k @ w


def slow_cycles(ts: np.ndarray, cycles: tuple[tuple[float, float], ...], rng: np.random.Generator) -> np.ndarray:
    """Sum of cosines (period_days, amplitude) with random phases, shape ``(samples,)``."""
    out = np.zeros(ts.size)
    for period_days, amplitude in cycles:
        period = period_days * DAY_SECONDS
        out += amplitude * np.cos(2 * np.pi * (ts / period + rng.random()))
    return out


def fronts(ts: np.ndarray, n_groups: int, p: SignalParams, rng: np.random.Generator) -> np.ndarray:
    """Weather fronts, shape ``(groups, samples)``: Poisson onsets (some before the run, still
    relaxing), each a step of N(0, front_sigma) that builds up over ``front_rise_minutes`` and
    relaxes with ``front_relax_hours``; it reaches group ``g`` ``g × front_sweep_minutes`` late."""
    rise, relax = p.front_rise_minutes * 60.0, p.front_relax_hours * 3600.0
    lo, hi = ts[0] - 5 * relax, ts[-1] + 1.0
    n = rng.poisson(p.front_rate_per_day * (hi - lo) / DAY_SECONDS)
    onset = rng.uniform(lo, hi, n)
    step = p.front_sigma * rng.standard_normal(n)
    lag = p.front_sweep_minutes * 60.0 * np.arange(n_groups)
    out = np.zeros((n_groups, ts.size))
    for t0, a in zip(onset, step):
        dt = np.maximum(ts[None, :] - t0 - lag[:, None], 0.0)
        out += a * (1.0 - np.exp(-dt / rise)) * np.exp(-dt / relax)
    return out


def true_signal(scenario: Scenario, ts: np.ndarray, rng: np.random.Generator,
                streams: Streams | None = None) -> np.ndarray:
    """Per-group level + daily cycle + weather (+ slow cycles, fronts), shape ``(groups, samples)``.

    ``rng`` draws the levels and the groups' own weather; ``streams(name)``
    gives the optional pieces' streams (``world-regional``, ``world-slow``,
    ``world-fronts``).
    """
    p = scenario.signal
    level = p.base_level + p.group_level_sigma * rng.standard_normal(scenario.groups)
    w = weather(scenario.groups, ts.size, scenario.interval_seconds, p, rng)
    if p.neighbour_scale > 0:
        w = neighbour_mix(w, p.neighbour_scale)
    if p.regional_fraction > 0:
        regional = weather(1, ts.size, scenario.interval_seconds, p, streams("world-regional"))
        w = np.sqrt(1.0 - p.regional_fraction) * w + np.sqrt(p.regional_fraction) * regional
    out = (level[:, None]
           + daily_cycle(ts, p.daily_amplitude, p.daily_peak_hour)[None, :]
           + w)
    if p.slow_cycles:
        out = out + slow_cycles(ts, p.slow_cycles, streams("world-slow"))[None, :]
    if p.front_rate_per_day > 0:
        out = out + fronts(ts, scenario.groups, p, streams("world-fronts"))
    return out


def calibrate(params: SignalParams, n_devices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-device calibration offset and noise σ, each shape ``(n_devices,)``."""
    offset = params.calibration_sigma * rng.standard_normal(n_devices)
    lo, hi = params.noise_spread
    sigma = params.noise_sigma * rng.uniform(lo, hi, n_devices)
    return offset, sigma


def drift_rates(params: SignalParams, n_devices: int, rng: np.random.Generator) -> np.ndarray:
    """Per-device natural calibration drift, quantity units per day, shape ``(n_devices,)``."""
    return params.drift_sigma * rng.standard_normal(n_devices)


@dataclass(frozen=True)
class Delivery:
    """Per-reading delivery plan of a block of devices, each array ``(devices, samples)``."""

    sent: np.ndarray        # bool: False = dropped or inside an outage (never sent)
    late: np.ndarray        # int: ticks a reading is sent after its sample tick (0: on time)
    duplicate: np.ndarray   # int: -1 no copy, else extra ticks after the original is sent
    skew: np.ndarray        # (devices,) constant clock offset, s


def outages(n: int, samples: int, interval: float, p: DeliveryParams, rng: np.random.Generator) -> np.ndarray:
    """Bool ``(n, samples)``: True inside an outage (Poisson starts, exponential lengths)."""
    out = np.zeros((n, samples), dtype=bool)
    k = rng.poisson(p.gap_rate_per_day * n * samples * interval / DAY_SECONDS)
    dev = rng.integers(n, size=k)
    start = rng.integers(samples, size=k)
    length = 1 + rng.exponential(p.gap_mean_seconds / interval, size=k).astype(int)
    for d, a, m in zip(dev.tolist(), start.tolist(), length.tolist()):
        out[d, a:a + m] = True
    return out


def delivery(p: DeliveryParams, n: int, samples: int, interval: float, streams: Streams) -> Delivery:
    """How each reading of ``n`` devices is delivered (streams ``dropout``, ``gaps``, ``late``,
    ``duplicates``, ``skew``; each drawn only when its feature is on)."""
    shape = (n, samples)
    sent = np.ones(shape, dtype=bool)
    if p.dropout_probability > 0:
        sent &= streams("dropout").random(shape) >= p.dropout_probability
    if p.gap_rate_per_day > 0:
        sent &= ~outages(n, samples, interval, p, streams("gaps"))
    late = np.zeros(shape, dtype=np.int64)
    if p.late_probability > 0:
        rng = streams("late")
        hit = rng.random(shape) < p.late_probability
        late = np.where(hit, rng.integers(1, p.late_max_samples + 1, shape), 0)
    duplicate = np.full(shape, -1, dtype=np.int64)
    if p.duplicate_probability > 0:
        rng = streams("duplicates")
        hit = rng.random(shape) < p.duplicate_probability
        duplicate = np.where(hit, rng.integers(0, p.late_max_samples + 1, shape), -1)
    skew = np.zeros(n)
    if p.clock_skew_seconds > 0:
        skew = streams("skew").uniform(-p.clock_skew_seconds, p.clock_skew_seconds, n)
    return Delivery(sent, late, duplicate, skew)
