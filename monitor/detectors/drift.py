"""Slow shifts and ramps: a second, more patient mean-shift CUSUM."""

from __future__ import annotations

from monitor.detectors.cusum import MeanShiftCusum


class SlowShiftCusum(MeanShiftCusum):
    """Page's two-sided CUSUM with a small reference value, for ramps and small steps.

    The main CUSUM (k = 0.5) is tuned for shifts of about one sigma and waits
    for a ramp to reach half a sigma. This one accumulates evidence above
    ``k = 0.2`` sigma with a threshold ``h = 22``: on independent N(0, 1)
    residuals it raises about one false alarm per 60,000 windows (two sides)
    and flags a ramp of 2 sigma over 2000 windows, starting from rest, at
    about 0.35 sigma (``python benchmarks/cusum_arl.py --k 0.2 --h 22 --ramp 0.001 --seed 1``).
    In the monitor its reference is raised while a device's learned offset is
    young (the observation's ``slack``: twice the offset's standard error in
    excess of a steady one's, 0.19 sigma after a 60-window warm-up at
    one-minute windows, nothing once it averages its full ~1,000), so that an
    offset learned from a short, unlucky stretch does not read as a small
    persistent shift.
    Real honest residuals have slower components (fronts, calibration drift),
    so its false alarms there are more frequent: the defaults were chosen on
    ``scenarios/tuning`` to stay well inside one per device-week. It does not
    hold back learning below its threshold (a device with a small honest offset
    would stop tracking it and end in alarm); only an alarm does. Same state and
    verdicts as `MeanShiftCusum` (a least-squares line over the run tells a
    ramp, ``drift``, from a step, ``bias``; early in a slow ramp the line is
    not yet significant, so a slow ramp is usually first reported as ``bias``).

    >>> import numpy as np
    >>> from monitor.detectors.base import Observation
    >>> det = SlowShiftCusum()
    >>> det.resize(1)
    >>> for w in range(1000):
    ...     d = det.update(Observation(np.array([0]), np.array([w]), np.zeros(1), np.zeros(1),
    ...                                np.array([0.002 * w]), np.ones(1)))
    ...     if d.alarm[0]:
    ...         break
    >>> w, str(det.kind(np.array([0]))[0])
    (248, 'bias')
    """

    name = "slow_shift"

    def __init__(self, k: float = 0.2, h: float = 22.0, h_off: float = 1.0, clip: float = 4.0,
                 cap: float = 2.0, drift_t: float = 4.0) -> None:
        super().__init__(k=k, h=h, h_off=h_off, clip=clip, cap=cap, drift_t=drift_t)
