"""Device restarts: sequence numbers that start again, reported as ``device/restart``."""

import numpy as np

from monitor.restarts import RestartTracker
from simulators import FleetSimulator
from simulators.scenario import Scenario
from tests.helpers import run_pipeline


def test_late_readings_are_not_restarts_and_state_carries_over_batches():
    t = RestartTracker(min_drop=32)
    t.resize(3)
    late = t.observe(np.array([0, 0, 0, 1, 0]), np.array([100, 101, 97, 5, 40]),
                     np.array([100.0, 101.0, 97.0, 5.0, 40.0]))  # 97: late by 4; 40: forwarded after a gap
    assert not late.any()
    assert t.observe(np.array([1, 0, 2]), np.array([6, 0, -1]), np.array([6.0, 300.0, 1.0])).tolist() == [False, True, False]
    assert t.state_dict()["last"][:3] == [0, 6, -1]


def _fleet(magnitude: float) -> FleetSimulator:
    return FleetSimulator(Scenario.model_validate({
        "name": "restart-test", "seed": 5, "groups": 1, "devices_per_group": 12, "samples": 700,
        "interval_seconds": 60,
        "attacks": [{"type": "restart", "status": "fault", "devices": ["site-00-dev-003"], "start": 300,
                     "gap": 12, "magnitude": magnitude}]}))


def test_a_restart_with_a_calibration_jump_is_a_restart_first_then_what_it_is():
    sim = _fleet(3.0)
    _, alerts = run_pipeline(list(sim.readings()))
    mine = [a for a in alerts if a.devices == ["site-00-dev-003"]]
    t0 = sim.scenario.start_ts
    first = mine[0]
    assert (first.kind, first.type, first.state) == ("device", "restart", "firing")
    assert 312 * 60 <= first.onset_ts - t0 < 314 * 60  # the first reading after the 12-sample gap
    # the jump inside the hold is reported on the restart alert, not as a bias of its own ...
    restart = [a for a in mine if a.type == "restart"]
    assert restart[1].state == "firing" and restart[1].evidence["shift_after_restart"] is True
    assert restart[-1].state == "resolved"
    # ... and since it lasts beyond the hold, a bias alert follows once the hold is over
    bias = [a for a in mine if a.type == "bias"]
    assert bias and bias[0].ts >= restart[-1].ts and bias[0].evidence.get("after_restart") is True
    assert {a.devices[0] for a in alerts if a.kind == "device"} == {"site-00-dev-003"}


def test_a_plain_restart_raises_only_the_restart_alert():
    sim = _fleet(0.0)
    _, alerts = run_pipeline(list(sim.readings()))
    assert [(a.type, a.state) for a in alerts if a.kind == "device"] == [("restart", "firing"), ("restart", "resolved")]
