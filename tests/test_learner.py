import json
import math

from monitor.learner import GroupLearner


def daily(i: int, shift: float = 0.0) -> float:
    return 20.0 + 3.0 * math.sin(2 * math.pi * (i % 144) / 144) + shift


def test_guard_vs_shadow_divergence_alerts_only_when_the_shadow_is_pulled():
    gl = GroupLearner(warmup=20)
    clean = [gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i), spread=0.5) for i in range(600)]
    assert not any(s.alarm for s in clean)
    pulled = [gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i, 2.0), spread=0.5) for i in range(600, 900)]
    assert pulled[-1].alarm and pulled[-1].divergence > 1.0


def test_a_version_that_regresses_on_trusted_reference_is_rolled_back():
    gl = GroupLearner(warmup=20, version_every=288)
    steps = [gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i), spread=0.5) for i in range(1200)]
    assert all(not s.rolled_back for s in steps)
    # poison that slipped through the guard: the trusted consensus itself is shifted for a period
    before = gl.forecast(600.0 * 1200)
    checks = []
    for i in range(1200, 2400):
        step = gl.update(ts=600.0 * i, consensus=daily(i, 3.0), plain_mean=daily(i, 3.0), spread=0.5)
        if step.regression is not None:
            checks.append(step)
            assert abs(gl.forecast(600.0 * 1200) - before) < 0.5  # rolled back to the version before the shift
    assert len(checks) >= 3 and all(c.rolled_back and c.regression > 1.0 for c in checks)


def test_state_round_trips_through_json():
    gl = GroupLearner(warmup=10, version_every=50)
    for i in range(200):
        gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i), spread=0.5)
    other = GroupLearner(warmup=10, version_every=50)
    other.load_state_dict(json.loads(json.dumps(gl.state_dict())))
    a = [gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i, 1), spread=0.5) for i in range(200, 300)]
    b = [other.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i, 1), spread=0.5) for i in range(200, 300)]
    assert a == b


def test_in_an_uncertain_window_the_guarded_model_learns_the_fallback_it_is_given():
    """The consensus abstains for a day while the signal moves up by 2: with the fallback the guarded
    model follows; without it, it forecasts the old level when the consensus returns."""
    def run(fallback: bool) -> float:
        gl = GroupLearner(warmup=20)
        for i in range(600):
            gl.update(ts=600.0 * i, consensus=daily(i), plain_mean=daily(i), spread=0.5)
        for i in range(600, 744):
            gl.update(ts=600.0 * i, consensus=math.nan, plain_mean=daily(i, 2.0), spread=0.5,
                      fallback=daily(i, 2.0) if fallback else math.nan)
        return gl.forecast(600.0 * 744) - daily(744, 2.0)
    assert abs(run(fallback=True)) < 0.5
    assert run(fallback=False) < -1.5
