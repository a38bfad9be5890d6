"""The collusion detector on its own: nomination, extension, confirmation and the reasons a set is dropped."""

import json

import numpy as np

from monitor.collusion import CollusionDetector, Nomination

N = 20


def run(shift_of, windows=400, seed=0, alarmed=None, noise_of=None, **kw):
    """Feed N devices' residuals z (N(0, 1) plus ``shift_of(w)``, an (N,) array) window by window
    (``alarmed``: (N,) each device's shift alarm direction, 0 none; ``noise_of(w)``: (N,) their noise, 1
    when not given); returns the detector and its events as (state, sorted members, window, why it ended)."""
    det = CollusionDetector(confirm=30, **kw)
    det.resize(N)
    rng = np.random.default_rng(seed)
    devices = np.arange(N)[None, :]
    events = []
    for w in range(windows):
        z = rng.normal(size=N) * (1.0 if noise_of is None else noise_of(w)) + shift_of(w)
        det.observe(devices[0], z)
        det.observe_round(devices, z[None, :], np.array([w]))
        for nom in det.scan(devices, np.ones((1, N), bool), np.array([0]), np.array([w]),
                            alarmed=None if alarmed is None else alarmed[None, :]):
            det.nominate(0, w, nom)
        for e in det.update(0, w, devices[0], z, np.ones(N)):
            events.append((e.state, sorted(e.set.members), w, e.set.ended))
    return det, events


def test_a_lasting_shared_shift_is_named_whole():
    colluders = np.arange(N) < 5
    det, events = run(lambda w: np.where(colluders & (w >= 100), 1.0, 0.0))
    firing = [e for e in events if e[0] == "firing"]
    assert firing, events
    assert set(firing[-1][1]) == set(range(5))       # the whole set, no honest device
    assert firing[0][2] - 100 < 150
    (s,) = det.confirmed()
    assert abs(s.shift - 1.0) < 0.3                  # its common shift, in sigmas (5 x 30 windows measured)


def test_devices_alarmed_one_way_join_sets_only_that_way():
    """Devices in a bias alarm for reading high are scored against the offset they had before it; when
    they read low together afterwards (a poisoner between episodes) that is no new set. Reading high,
    or the same low shift without the alarms, is one."""
    liars = np.arange(N) < 4
    high = np.where(liars, 1, 0).astype(np.int8)
    for shift, alarmed, named in ((-1.0, high, False), (-1.0, None, True), (1.0, high, True)):
        _, events = run(lambda w: np.where(liars & (w >= 100), shift, 0.0), alarmed=alarmed)
        firing = [e for e in events if e[0] == "firing"]
        assert bool(firing) is named, (shift, alarmed, events)
        if named:
            assert set(firing[-1][1]) == set(range(4))


def test_honest_noise_raises_nothing():
    for seed in range(3):
        _, events = run(lambda w: np.zeros(N), windows=2000, seed=seed)
        assert events == []


def test_a_set_no_longer_shifted_over_its_hold_is_not_alerted():
    """A long memory can hold a deviation that has just ended (an event's tail) and nominate its
    devices. Over the hold their shifts agree, at zero: that is not one shared shift, so no alert.
    The same nomination with the members still shifted is alerted."""
    members = np.arange(4)
    for shift, alerted in ((0.0, False), (1.0, True)):
        det = CollusionDetector(confirm=30)
        det.resize(N)
        state = det.state_dict()
        ewma = np.zeros((N, 3))
        ewma[members, 2] = 0.5                    # what the 128-window means still remember
        det.load_state_dict(state | {"ewma": ewma.tolist()})
        det.nominate(0, 0, Nomination(row=0, direction=1, scale=2, members=members, evidence=12.0))
        rng = np.random.default_rng(1)
        fired = []
        for w in range(1, 60):
            z = rng.normal(size=N) + np.where(np.arange(N) < 4, shift, 0.0)
            det.observe(np.arange(N), z)
            fired += [e for e in det.update(0, w, np.arange(N), z, np.ones(N)) if e.state == "firing"]
        assert bool(fired) is alerted


def test_a_set_is_dropped_when_others_shifted_its_way_by_other_amounts():
    """Sun on a wall shifts many devices by many sizes; the scan names the cluster that agrees best.
    Held with devices shifted the same way by another amount outside it (two or more: ``outsiders``),
    the set is dropped; one such device (a camouflage member sitting on the pulled consensus), or
    the rule turned off, and it is alerted."""
    members, gains = np.arange(4), np.r_[np.ones(4), np.full(3, 0.6), np.zeros(N - 7)]
    for n_out, outsiders, alerted in ((3, 2, False), (1, 2, True), (3, 0, True)):
        det = CollusionDetector(confirm=200, outsiders=outsiders)
        det.resize(N)
        shift = np.where(np.arange(N) < 4 + n_out, gains, 0.0)
        ewma = np.zeros((N, 3))
        ewma[:, 1] = shift                        # the deviation has lasted a while when the set is found
        det.load_state_dict(det.state_dict() | {"ewma": ewma.tolist()})
        det.nominate(0, 0, Nomination(row=0, direction=1, scale=1, members=members, evidence=20.0))
        rng = np.random.default_rng(2)
        fired = []
        for w in range(1, 220):
            z = rng.normal(size=N) + shift
            det.observe(np.arange(N), z)
            fired += [e for e in det.update(0, w, np.arange(N), z, np.ones(N)) if e.state == "firing"]
        assert bool(fired) is alerted, (n_out, outsiders)
        assert fired or 0 not in det._active          # dropped at the end of the hold, not left pending
        counted = {k: v for k, v in det.drain_outcomes().items() if v}
        assert counted == {"nominated": 1, "alerted" if alerted else "outsiders": 1}
        assert not any(det.drain_outcomes().values())  # drained


def test_members_disagreeing_are_dropped():
    gains = np.r_[0.3, 1.0, 2.0, 3.0, np.zeros(N - 4)]       # deviating together, by very different amounts
    det, events = run(lambda w: gains * (w >= 100) * 1.5, windows=400)
    assert [e for e in events if e[0] == "firing"] == []
    outcomes = det.drain_outcomes()
    assert outcomes["heterogeneous"] >= 1 and outcomes["alerted"] == 0


def test_state_round_trips():
    colluders = np.arange(N) < 5
    det, _ = run(lambda w: np.where(colluders & (w >= 100), 1.0, 0.0), windows=200)
    other = CollusionDetector(confirm=30)
    other.load_state_dict(det.state_dict())
    assert other.state_dict() == det.state_dict()


def test_an_intermittent_set_is_confirmed_over_its_active_spells():
    """Four devices shifted by 3σ for 15 windows of every 60: each spell ends before a 30-window hold
    does, so the set fades each time. Remembered (``recur``), its hold goes on in the next spell and it
    is alerted, with the first spell's onset; forgotten, it never is. The state keeps the faded set."""
    liars = np.arange(N) < 4
    spell = lambda w: np.where(liars & (w >= 100) & ((w - 100) % 60 < 15), 3.0, 0.0)  # noqa: E731
    _, events = run(spell, windows=400)
    assert events == []
    det, events = run(spell, windows=200, recur=100)
    assert [e[0] for e in events] == ["firing"] and events[0][1] == [0, 1, 2, 3], events
    assert events[0][2] > 160                         # not within the first spell
    (s,) = det.confirmed()
    assert s.onset < 110
    det2, _ = run(spell, windows=130, recur=100)      # mid-way: the first spell has faded
    state = det2.state_dict()
    assert state["faded"]
    det3 = CollusionDetector(confirm=30, recur=100)
    det3.load_state_dict(state)
    assert det3.state_dict() == state


def test_a_faded_set_is_resumed_only_by_a_nomination_sharing_enough_of_it():
    """A nomination resumes the hold of the group's last faded set when it shares at least
    ``min_members`` devices and half of the smaller of the two, counting every member of the faded
    sets that hold already resumed (an intermittent set is found as different parts of itself); a
    fast drifter named with another honest partner each time resumes nothing."""
    def outcomes(nominations):
        det = CollusionDetector(confirm=30, recur=100)
        det.resize(N)
        for w, members in nominations:  # each held set fades at once: no mean stands out
            det.nominate(0, w, Nomination(row=0, direction=1, scale=0, members=np.array(members), evidence=15.0))
            det.update(0, w + 1, np.arange(N), np.zeros(N), np.ones(N))
        return det.drain_outcomes()

    assert outcomes([(0, [0, 1, 2, 3, 4, 5]), (5, [0, 1]), (10, [2, 3, 4])])["resumed"] == 2
    assert outcomes([(0, [7, 8]), (5, [7, 9]), (10, [7, 10])])["resumed"] == 0
    assert outcomes([(0, [0, 1, 2]), (500, [0, 1, 2])])["resumed"] == 0  # too late


def test_a_faded_set_is_forgotten_after_recur_windows():
    """One spell only: its set fades, is remembered while it may come back, and then forgotten
    (the state keeps no stale hold)."""
    liars = np.arange(N) < 4
    spell = lambda w: np.where(liars & (100 <= w) & (w < 115), 3.0, 0.0)  # noqa: E731
    det, _ = run(spell, windows=180, recur=100)
    assert det.state_dict()["faded"]
    det, _ = run(spell, windows=400, recur=100)
    assert det.state_dict()["faded"] == []



def held(shift, gap, seed, confirm=90):
    """Hold the set of the first four devices, nominated by the 128-window means, while every device
    reads N(0, 1) plus ``shift``; whether it was alerted by the end of the hold."""
    det = CollusionDetector(confirm=confirm, gap=gap)
    det.resize(N)
    ewma = np.zeros((N, 3))
    ewma[:, 2] = shift
    det.load_state_dict(det.state_dict() | {"ewma": ewma.tolist()})
    det.nominate(0, 0, Nomination(row=0, direction=1, scale=2, members=np.arange(4), evidence=15.0))
    rng = np.random.default_rng(seed)
    fired = False
    for w in range(1, confirm + 20):
        z = rng.normal(size=N) + shift
        det.observe(np.arange(N), z)
        fired |= any(e.state == "firing" for e in det.update(0, w, np.arange(N), z, np.ones(N)))
    return fired


def test_with_a_gap_a_set_must_stand_apart_from_the_rest_of_its_group():
    """Four devices sharing a 0.35 sigma shift. Where the other sixteen spread from -0.3 to +0.3 sigma
    (honest devices drift apart: the four are the edge of the group, not apart from it) the set is
    alerted on every seed without ``gap`` and on about half with ``gap`` 2; where the others read
    no shift, it stands apart and is alerted on nearly every seed with ``gap`` 2 too. A test on
    sixteen devices' spread, measured over a 90-window hold, is rough: it thins such alerts out, it
    cannot tell them apart for sure."""
    wide = np.r_[np.full(4, 0.35), np.linspace(-0.3, 0.3, N - 4)]
    tight = np.r_[np.full(4, 0.35), np.zeros(N - 4)]
    seeds = range(10)
    assert all(held(wide, 0.0, s) for s in seeds)
    assert sum(held(wide, 2.0, s) for s in seeds) <= 7
    assert sum(held(tight, 2.0, s) for s in seeds) >= 8
    det = CollusionDetector(gap=2.0)
    assert det.gap == 2.0 and CollusionDetector().gap == 0.0


def test_an_alerted_set_whose_members_drift_apart_resolves_on_recheck():
    """Five devices shift together by 1 sigma and are alerted. If they then part (one member's shift
    grows, another's falls away, as honest devices alerted by mistake drift apart against frozen
    offsets), ``recheck`` blocks in a row disagreeing resolve the set as ``heterogeneous``; without
    ``recheck``, or if the five keep one shift, it stands."""
    colluders = np.arange(N) < 5

    def shift(parting):
        def f(w):
            s = np.where(colluders & (w >= 100), 1.0, 0.0)
            if parting and w >= 300:
                s[0], s[1] = 2.0, 0.2
            return s
        return f

    for parting, recheck, resolves in ((True, 2, True), (True, 0, False), (False, 2, False)):
        det, events = run(shift(parting), windows=700, recheck=recheck)
        assert any(e[0] == "firing" for e in events), events
        resolved = [e for e in events if e[0] == "resolved"]
        assert bool(resolved) is resolves, (parting, recheck, events)
        if resolves:
            assert 300 < resolved[0][2] <= 300 + 3 * 30 + 1 and resolved[0][3] == "heterogeneous"
        else:
            assert det.confirmed() and not det.confirmed()[0].ended


def test_recheck_tests_only_the_members_it_was_alerted_with():
    """A camouflage member joins after the alert with another shift than the rest: the re-check still
    finds the members it was alerted with agreeing, and the set stands."""
    core, joiner = np.arange(N) < 5, np.arange(N) == 5
    det, events = run(lambda w: np.where(core & (w >= 100), 1.0, 0.0) + np.where(joiner & (w >= 250), 3.0, 0.0),
                      windows=700, recheck=2)
    (s,) = det.confirmed()
    assert 5 in s.members and 5 not in s.core
    assert not [e for e in events if e[0] == "resolved"], events
    other = CollusionDetector(confirm=30, recheck=2)  # the re-check's state goes into a checkpoint
    other.load_state_dict(json.loads(json.dumps(det.state_dict())))
    (t,) = other.confirmed()
    assert (t.core, t.block, t.failed) == (s.core, s.block, s.failed) and s.block > 0


def test_a_remembered_set_measured_through_its_pauses_is_alerted_sooner():
    """Five devices shifted by 2σ for 8 windows of every 40. Remembered (``recur``) but measured only
    while held, each spell adds a few windows to a 30-window hold; measured through the pauses as
    well (``measure_faded``), the second spell completes it. Its group is passed to ``update`` while
    the set is remembered."""
    liars = np.arange(N) < 5
    spell = lambda w: np.where(liars & (w >= 100) & ((w - 100) % 40 < 8), 2.0, 0.0)  # noqa: E731
    for seed in range(4):
        alerted = []
        for measure in (False, True):
            _, events = run(spell, windows=600, seed=seed, recur=200, measure_faded=measure)
            firing = [e for e in events if e[0] == "firing"]
            assert firing and set(firing[0][1]) <= set(range(5)), (seed, measure, events)
            alerted.append(firing[0][2])
        assert alerted[1] < alerted[0] and alerted[1] < 190, (seed, alerted)
    det, _ = run(spell, windows=125, recur=200, measure_faded=True)  # after the first spell: faded
    assert det.measured_groups() == [0] and not det.active()


def test_a_camp_of_half_the_group_is_not_alerted():
    """Half the group reading off together within the spread is one of two camps: nothing says it is
    the one that lies (in a group half of which colludes, the honest half reads off against a
    consensus the colluders hold). With ``camp`` it is not alerted; a set of 30% is alerted as before,
    and so is a camp shifted by a gross amount (the consensus' history tells those apart) or one that
    history vouched for."""
    half, third = np.arange(N) < 10, np.arange(N) < 6
    for seed in range(3):
        det, events = run(lambda w: np.where(half & (w >= 100), -1.0, 0.0), seed=seed, camp=0.5)
        assert events == [], (seed, events)
        assert det.drain_outcomes()["camp"] >= 1
        _, events = run(lambda w: np.where(half & (w >= 100), -1.0, 0.0), seed=seed)
        assert any(e[0] == "firing" for e in events)                     # without it: named
        _, events = run(lambda w: np.where(third & (w >= 100), -1.0, 0.0), seed=seed, camp=0.5)
        assert set([e for e in events if e[0] == "firing"][-1][1]) == set(range(6))

    def held(shift, vouched):
        """Events of half the group nominated (as the pipeline does after a take-over check) and held."""
        det = CollusionDetector(confirm=30, camp=0.5)
        det.resize(N)
        rng = np.random.default_rng(0)
        devices = np.arange(N)
        events = []
        for w in range(60):
            z = rng.normal(size=N) - shift * half
            det.observe(devices, z)
            if w == 20:
                det.nominate(0, w, Nomination(row=0, direction=-1, scale=0, members=devices[half], evidence=30.0),
                             vouched=vouched)
            events += det.update(0, w, devices, z, np.ones(N))
        return det, [e.state for e in events]

    assert held(1.0, False)[1] == []
    assert held(3.0, False)[1] == ["firing"]                 # gross: left to the consensus' history
    det, events = held(1.0, True)                            # vouched for by the take-over check
    assert events == ["firing"]
    assert json.loads(json.dumps(det.state_dict()))["active"][0]["vouched"] is True


def test_a_camouflage_member_joins_its_alerted_set_as_too_quiet():
    """Five devices shift by 1; a sixth reports where they pull the consensus, with a tenth of its noise:
    its residual is near zero, so no mean test sees it, but its steps are far smaller than its group's."""
    colluders, lead = np.arange(N) < 5, np.arange(N) == 19
    for mimic, named in ((0.0, set(range(5))), (18.0, set(range(5)) | {19})):
        det, events = run(lambda w: np.where(colluders & (w >= 100), 1.0, 0.0), windows=400, mimic=mimic,
                          noise_of=lambda w: np.where(lead & (w >= 100), 0.1, 1.0))
        firing = [e for e in events if e[0] == "firing"]
        assert set(firing[-1][1]) == named, (mimic, events)
        (s,) = det.confirmed()
        assert s.mimics == ([19] if mimic else [])


def test_a_device_quiet_since_long_before_the_set_is_not_its_camouflage():
    colluders, calm = np.arange(N) < 5, np.arange(N) == 19
    det, events = run(lambda w: np.where(colluders & (w >= 300), 1.0, 0.0), windows=500, mimic=18.0,
                      noise_of=lambda w: np.where(calm, 0.1, 1.0))
    firing = [e for e in events if e[0] == "firing"]
    assert set(firing[-1][1]) == set(range(5)), events


def test_camouflage_members_take_no_shifted_members_place_under_max_fraction():
    """At most 6 shifted members (0.3 of 20): five shift at window 100 and a sixth at 250, while two
    devices report the pulled consensus. The quiet two stay in the consensus, so they do not count."""
    first, late, quiet = np.arange(N) < 5, np.arange(N) == 5, np.arange(N) >= 18
    det, events = run(lambda w: np.where(first & (w >= 100) | late & (w >= 250), 1.0, 0.0), windows=500,
                      mimic=18.0, max_fraction=0.3, noise_of=lambda w: np.where(quiet & (w >= 100), 0.1, 1.0))
    firing = [e for e in events if e[0] == "firing"]
    assert set(firing[-1][1]) == set(range(6)) | {18, 19}, events
    (s,) = det.confirmed()
    assert sorted(s.mimics) == [18, 19]
