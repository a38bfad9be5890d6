"""The honest physical world: true group signals and imperfect honest devices.

>>> daily_cycle(np.array([0.0, 43200.0]), amplitude=1.0, peak_hour=0.0).round(6).tolist()
[1.0, -1.0]
"""

from __future__ import annotations

import numpy as np

from simulators.scenario import Scenario, SignalParams

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


def true_signal(scenario: Scenario, ts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-group level + daily cycle + weather, shape ``(groups, samples)``."""
    p = scenario.signal
    level = p.base_level + p.group_level_sigma * rng.standard_normal(scenario.groups)
    return (level[:, None]
            + daily_cycle(ts, p.daily_amplitude, p.daily_peak_hour)[None, :]
            + weather(scenario.groups, ts.size, scenario.interval_seconds, p, rng))


def calibrate(params: SignalParams, n_devices: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-device calibration offset and noise σ, each shape ``(n_devices,)``."""
    offset = params.calibration_sigma * rng.standard_normal(n_devices)
    lo, hi = params.noise_spread
    sigma = params.noise_sigma * rng.uniform(lo, hi, n_devices)
    return offset, sigma
