"""Per-device detectors, vectorised over devices, and the monitor that composes them.

Every detector follows one contract (`base.Detector`): state lives in arrays
indexed by device, ``update(obs)`` scores one window for a set of devices and
returns which of them are in alarm, ``state_dict``/``load_state_dict`` give and
take plain lists of numbers (no pickle).
"""

from monitor.detectors.base import Detector, Detection, Observation
from monitor.detectors.cusum import MeanShiftCusum
from monitor.detectors.drift import SlowShiftCusum
from monitor.detectors.replay import ReplayDetector
from monitor.detectors.spike import SpikeDetector
from monitor.detectors.stuck import StuckDetector
from monitor.detectors.variance import VarianceCusum

__all__ = [
    "Detection",
    "Detector",
    "MeanShiftCusum",
    "Observation",
    "ReplayDetector",
    "SlowShiftCusum",
    "SpikeDetector",
    "StuckDetector",
    "VarianceCusum",
]
