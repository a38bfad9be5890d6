"""A guarded online learner per group (River), with an unguarded shadow beside it.

Each group has a River linear model that forecasts the group's consensus from
the time of day. The *guarded* model learns only from the robust consensus of
trusted devices; in a window whose consensus was uncertain it learns the
fallback the devices were judged against there (the robust consensus of every
present device but the members of colluding sets), and nothing in a group split
in two camps. A model that skipped the uncertain windows would fall behind
exactly when the signal moves most (pollution episodes), and more on attacked
data than on clean, which is not what a guard is for. The
*shadow* learns from the plain mean of every reading, as an unprotected
pipeline would. Both are scored before they learn. A differential test
compares their forecasts on each window: when they diverge by more than
``threshold`` group spreads (exponentially averaged), the data stream is
trying to move what is learned, and a ``learner`` alert fires.

A second differential test compares model *versions*: every ``version_every``
windows the guarded model is compared with its previous accepted version on
a fixed set of trusted reference windows (consensus windows kept from the
previous period, spread over it). If the new version forecasts them worse by
more than ``regression`` group spreads, something slipped past the guard: a
``learner/regression`` alert fires and the guarded model is rolled back to
the previous version (the reference stays that of the last accepted period,
so poison that lasts does not become the reference); otherwise the new
version is accepted and its period's windows become the next reference.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from river import linear_model, optim

DAY = 86400.0


@lru_cache(maxsize=4096)
def time_features(ts: float) -> dict[str, float]:
    """Daily and half-daily harmonics of the event time (cached: every group of a window shares them;
    the dict is read, never changed).

    >>> sorted(time_features(0.0))
    ['cos1', 'cos2', 'sin1', 'sin2']
    """
    a = 2.0 * math.pi * (ts % DAY) / DAY
    return {"sin1": math.sin(a), "cos1": math.cos(a), "sin2": math.sin(2 * a), "cos2": math.cos(2 * a)}


def _model(lr: float) -> linear_model.LinearRegression:
    return linear_model.LinearRegression(optimizer=optim.SGD(lr), intercept_lr=lr, l2=0.0)


def _weights(model: linear_model.LinearRegression) -> dict:
    return {"weights": {k: float(v) for k, v in model._weights.items()}, "intercept": float(model.intercept)}


def _load(model: linear_model.LinearRegression, state: dict) -> None:
    for k, v in state["weights"].items():
        model._weights[k] = v
    model.intercept = state["intercept"]


class LearnerStep(NamedTuple):
    """What the differential test saw in one window of one group (immutable; a named tuple because
    one is made per group and window)."""

    divergence: float          # |guarded - shadow| forecast, in group spreads (averaged)
    guarded_error: float       # |forecast - consensus| of the guarded model (value units), NaN if none
    shadow_error: float        # same for the shadow, against the same trusted consensus
    alarm: bool
    changed: bool              # alarm switched on or off in this window
    guarded_forecast: float = math.nan  # forecasts made before learning this window (NaN in warm-up)
    shadow_forecast: float = math.nan
    regression: float | None = None     # at a version check: new minus previous error on the reference (spreads)
    rolled_back: bool = False


_WARMING_UP = LearnerStep(0.0, math.nan, math.nan, False, False)


class GroupLearner:
    """The guarded model, its shadow, and their differential test, for one group.

    >>> gl = GroupLearner(warmup=5)
    >>> steps = [gl.update(ts=600.0 * i, consensus=20.0, plain_mean=20.0 + (3 if i > 50 else 0), spread=1.0)
    ...          for i in range(300)]
    >>> steps[40].alarm, steps[-1].alarm
    (False, True)
    """

    def __init__(self, lr: float = 0.05, warmup: int = 30, alpha: float = 0.05, threshold: float = 1.0,
                 version_every: int = 1440, regression: float = 1.0, reference_size: int = 96) -> None:
        if not (lr > 0 and warmup >= 2 and 0 < alpha <= 1 and threshold > 0 and version_every >= 2
                and regression > 0 and reference_size >= 1):
            raise ValueError("GroupLearner needs lr > 0, warmup >= 2, 0 < alpha <= 1, threshold > 0, "
                             "version_every >= 2, regression > 0, reference_size >= 1")
        self.lr, self.warmup, self.alpha, self.threshold = lr, warmup, alpha, threshold
        self.version_every, self.regression, self.reference_size = version_every, regression, reference_size
        self._stride = max(1, version_every // reference_size)  # windows between two kept for the reference
        self._previous: dict | None = None        # the last accepted version of the guarded model
        self._reference: list[list[float]] = []   # trusted (ts, consensus) windows of the previous period
        self._collecting: list[list[float]] = []  # ... being gathered in the current period
        self._since = 0
        self._guarded = _model(lr)
        self._shadow = _model(lr)
        self._n = 0
        self._mu = 0.0
        self._m2 = 0.0
        self._spread = 0.0
        self._div = 0.0
        self._alarm = False

    @property
    def _sd(self) -> float:
        return math.sqrt(self._m2 / max(self._n - 1, 1)) or 1.0

    def forecast(self, ts: float) -> float:
        """The guarded model's forecast of the consensus at ``ts`` (value units)."""
        return self._mu + self._sd * self._guarded.predict_one(time_features(ts))

    def update(self, ts: float, consensus: float, plain_mean: float, spread: float,
               fallback: float = math.nan) -> LearnerStep:
        """Score then learn one window. ``consensus`` is NaN when it was uncertain; the guarded model
        then learns ``fallback`` if that is a number (it is scored, and the reference kept, only on
        certain windows)."""
        certain = math.isfinite(consensus)
        if self._n < self.warmup:
            if certain:  # Welford: fix the target's location and scale
                self._n += 1
                delta = consensus - self._mu
                self._mu += delta / self._n
                self._m2 += delta * (consensus - self._mu)
                self._spread += (spread - self._spread) / self._n
            return _WARMING_UP
        x = time_features(ts)
        sd = self._sd
        pg = self._mu + sd * self._guarded.predict_one(x)
        ps = self._mu + sd * self._shadow.predict_one(x)
        g_err = abs(pg - consensus) if certain else math.nan
        s_err = abs(ps - consensus) if certain else math.nan
        if certain and spread > 0:
            self._spread += self.alpha * 0.1 * (spread - self._spread)
        gap = abs(pg - ps) / max(self._spread, 1e-12)
        self._div += self.alpha * (gap - self._div)
        was = self._alarm
        self._alarm = self._div > self.threshold if not was else self._div > 0.5 * self.threshold
        target = consensus if certain else fallback
        if math.isfinite(target):
            self._guarded.learn_one(x, (target - self._mu) / sd)
        if certain:
            if self._since % self._stride == 0 and len(self._collecting) < self.reference_size:
                self._collecting.append([ts, consensus])
        if math.isfinite(plain_mean):
            self._shadow.learn_one(x, (plain_mean - self._mu) / sd)
        self._since += 1
        regression, rolled_back = None, False
        if self._since >= self.version_every:
            regression, rolled_back = self._check_version()
        return LearnerStep(self._div, g_err, s_err, self._alarm, self._alarm != was, pg, ps, regression, rolled_back)

    def _error(self, state: dict, windows: list[list[float]]) -> float:
        model = _model(self.lr)
        _load(model, state)
        return sum(abs(self._mu + self._sd * model.predict_one(time_features(t)) - y) for t, y in windows) / len(windows)

    def _check_version(self) -> tuple[float | None, bool]:
        """Compare the guarded model with its previous version on the reference windows."""
        self._since = 0
        current = _weights(self._guarded)
        regression, rolled_back = None, False
        if self._previous is not None and self._reference:
            regression = (self._error(current, self._reference) - self._error(self._previous, self._reference)) \
                / max(self._spread, 1e-12)
            if regression > self.regression:
                _load(self._guarded, self._previous)  # roll back to the version that did not regress
                rolled_back = True
        if not rolled_back:  # the accepted version's period becomes the next reference
            self._previous = current
            self._reference = self._collecting or self._reference
        self._collecting = []
        return regression, rolled_back

    def state_dict(self) -> dict:
        return {"n": self._n, "mu": self._mu, "m2": self._m2, "spread": self._spread, "div": self._div,
                "alarm": self._alarm, "guarded": _weights(self._guarded), "shadow": _weights(self._shadow),
                "previous": self._previous, "reference": self._reference, "collecting": self._collecting,
                "since": self._since}

    def load_state_dict(self, state: dict) -> None:
        self._n, self._mu, self._m2 = state["n"], state["mu"], state["m2"]
        self._spread, self._div, self._alarm = state["spread"], state["div"], state["alarm"]
        _load(self._guarded, state["guarded"])
        _load(self._shadow, state["shadow"])
        self._previous, self._reference = state["previous"], state["reference"]
        self._collecting, self._since = state["collecting"], state["since"]
