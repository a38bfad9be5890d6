"""Trust that lasts: a beta reputation per device, with quarantine and re-admission.

Each scored window adds (with forgetting) one piece of evidence: *good* if the
device agreed with the consensus (|z| under ``good_z``), *bad* if it was in
alarm. Trust is the mean of the Beta(good + 1, bad + 1) posterior (Ganeriwal,
Balzano, Srivastava, ACM TOSN 2008). A device whose trust falls under
``quarantine_below`` is quarantined and leaves the consensus even between
alarms (an on/off attacker stays out); it is re-admitted only once its trust
has climbed back over ``readmit_above`` through sustained good behaviour.

>>> rep = BetaReputation(forget=0.98)
>>> rep.resize(1)
>>> d = np.array([0])
>>> for _ in range(40): rep.update(d, good=np.array([False]), bad=np.array([True]))
>>> bool(rep.quarantined[0]), round(float(rep.trust(d)[0]), 2)
(True, 0.03)
>>> steps = 0
>>> while rep.quarantined[0]:
...     rep.update(d, good=np.array([True]), bad=np.array([False])); steps += 1
>>> steps > 50
True
"""

from __future__ import annotations

import numpy as np


class BetaReputation:
    """Beta reputation per device, vectorised; state: ``good``, ``bad`` (float), ``quarantined`` (bool)."""

    def __init__(self, forget: float = 0.995, good_z: float = 2.0, quarantine_below: float = 0.3,
                 readmit_above: float = 0.8) -> None:
        if not (0 < forget <= 1 and good_z > 0 and 0 < quarantine_below < readmit_above < 1):
            raise ValueError("BetaReputation needs 0 < forget <= 1, good_z > 0, 0 < quarantine_below < readmit_above < 1")
        self.forget, self.good_z = forget, good_z
        self.quarantine_below, self.readmit_above = quarantine_below, readmit_above
        self._good = np.zeros(0)
        self._bad = np.zeros(0)
        self._quarantined = np.zeros(0, bool)

    def resize(self, n: int) -> None:
        if n <= len(self._good):
            return
        size = max(n, 2 * len(self._good))
        pad = size - len(self._good)
        self._good = np.r_[self._good, np.zeros(pad)]
        self._bad = np.r_[self._bad, np.zeros(pad)]
        self._quarantined = np.r_[self._quarantined, np.zeros(pad, bool)]

    @property
    def quarantined(self) -> np.ndarray:
        return self._quarantined

    def trust(self, devices: np.ndarray) -> np.ndarray:
        """Posterior mean reliability of these devices (0.5 for an unknown one)."""
        return (self._good[devices] + 1.0) / (self._good[devices] + self._bad[devices] + 2.0)

    def update(self, devices: np.ndarray, good: np.ndarray, bad: np.ndarray) -> None:
        """One window of evidence for these devices; quarantine and re-admit with hysteresis."""
        f = self.forget
        self._good[devices] = f * self._good[devices] + good
        self._bad[devices] = f * self._bad[devices] + bad
        t = self.trust(devices)
        q = self._quarantined[devices]
        self._quarantined[devices] = np.where(q, t < self.readmit_above, t < self.quarantine_below)

    def reset(self, devices: np.ndarray) -> None:
        """Back to the prior for these devices (unknown, not quarantined)."""
        self._good[devices] = 0.0
        self._bad[devices] = 0.0
        self._quarantined[devices] = False

    def state_dict(self) -> dict:
        return {"good": self._good.tolist(), "bad": self._bad.tolist(), "quarantined": self._quarantined.tolist()}

    def load_state_dict(self, state: dict) -> None:
        self._good = np.asarray(state["good"], float)
        self._bad = np.asarray(state["bad"], float)
        self._quarantined = np.asarray(state["quarantined"], bool)
