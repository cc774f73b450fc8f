"""Intake gate state machine: hysteresis, fail-closed freshness, alerts reasons (stateful hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from lockerd.camera.analyser import Analyser
from lockerd.camera.analysis import Verdict
from lockerd.camera.gate import GateLogic
from lockerd.camera.regimes import Regime
from lockerd.config import Camera
from lockerd.sim.camera import SimCamera

BAD = [v for v in Verdict if v not in (Verdict.OK, Verdict.LEARNING)]


class GateMachine(RuleBasedStateMachine):
    """Random verdict streams; a model tracks what the gate must do."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
        self.now = 0.0
        self.good_run_start: float | None = None
        self.bad_run_start: float | None = None
        self.last_good: float | None = None
        self.was_open = False

    def _feed(self, dt: float, verdict: Verdict) -> None:
        self.now += dt
        self.was_open = self.gate.open
        change = self.gate.update(self.now, verdict)
        if verdict is Verdict.OK:
            self.last_good = self.now
            self.good_run_start = self.good_run_start if self.good_run_start is not None else self.now
            self.bad_run_start = None
        else:
            self.good_run_start = None
            self.bad_run_start = self.bad_run_start if self.bad_run_start is not None else self.now
        if change is not None and change.open:
            # never opens without a continuous good run of good_hold_s
            assert self.good_run_start is not None
            assert self.now - self.good_run_start >= 3.0

    @rule(dt=st.floats(0.01, 0.5), verdict=st.sampled_from([Verdict.OK]))
    def good(self, dt: float, verdict: Verdict) -> None:
        self._feed(dt, verdict)

    @rule(dt=st.floats(0.01, 0.5), verdict=st.sampled_from(BAD))
    def bad(self, dt: float, verdict: Verdict) -> None:
        self._feed(dt, verdict)
        if self.bad_run_start is not None and self.now - self.bad_run_start >= 0.5:
            assert not self.gate.open
            assert self.gate.reason == verdict.alert_reason

    @rule(dt=st.floats(0.0, 5.0))
    def silence(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def open_only_with_fresh_good_verdict(self) -> None:
        if self.gate.is_open(self.now):
            assert self.last_good is not None
            assert self.now - self.last_good <= 2.0
            assert self.gate.reason is None
        else:
            assert self.gate.reason is not None or self.now - (self.last_good or -99) > 2.0


TestGateMachine = GateMachine.TestCase
TestGateMachine.settings = settings(max_examples=120, stateful_step_count=60, deadline=None)


def test_single_bad_frames_between_good_ones_do_not_close() -> None:
    gate = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
    t = 0.0
    for _ in range(20):
        t += 0.2
        gate.update(t, Verdict.OK)
    assert gate.is_open(t)
    for i in range(100):  # someone walks past every 2 s and blocks one sample
        t += 0.2
        gate.update(t, Verdict.COVERED if i % 10 == 0 else Verdict.OK)
        assert gate.is_open(t)


def test_alternating_bad_and_good_still_closes() -> None:
    """A tamperer flicking a cover on and off must not keep intake open."""
    gate = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
    t = 0.0
    for _ in range(20):
        t += 0.2
        gate.update(t, Verdict.OK)
    for i in range(10):
        t += 0.2
        gate.update(t, Verdict.COVERED if i % 2 == 0 else Verdict.OK)
    assert not gate.open
    assert gate.reason == "camera_obstructed"


def test_benign_sequence_with_injected_clock_never_flaps() -> None:
    """Analyser + gate over a minute of simulated benign changes at 5 Hz, no wall-clock waiting."""
    cfg = Camera()
    cam = SimCamera(320, 240, seed=3)
    analyser = Analyser(cfg)
    gate = GateLogic(bad_hold_s=cfg.bad_hold_s, good_hold_s=cfg.good_hold_s, fresh_s=cfg.fresh_s)
    rng = np.random.default_rng(5)
    t, changes = 0.0, []
    modes = ["normal"] * 20 + ["person", "shadow", "dim", "shake", "night", "ir", "normal"] * 6
    for step, mode in enumerate(modes * 2):
        for _ in range(int(rng.integers(1, 4))):
            t += 1 / cfg.sample_hz
            verdict, _ = analyser.analyse(cam.render(mode, t), t, gate.open)
            change = gate.update(t, verdict)
            if change is not None:
                changes.append((step, mode, change))
    assert [c[2].open for c in changes] == [True], changes


def test_reference_is_not_relearnt_while_tampered() -> None:
    cfg = Camera(relearn_tau_s=10.0)
    cam = SimCamera(320, 240, seed=4)
    analyser = Analyser(cfg)
    gate = GateLogic(bad_hold_s=cfg.bad_hold_s, good_hold_s=cfg.good_hold_s, fresh_s=cfg.fresh_s)
    t = 0.0
    for _ in range(30):
        t += 0.2
        gate.update(t, analyser.analyse(cam.render("normal", t), t, gate.open)[0])
    assert gate.open
    assert analyser.ref is not None
    before = analyser.ref.gray.copy()
    for i in range(300):  # a minute turned away or covered, six times relearn_tau_s
        t += 0.2
        verdict, _ = analyser.analyse(cam.render(("turned", "partial")[i % 2], t), t, gate.open)
        gate.update(t, verdict)
    assert not gate.open
    assert analyser.bank.learnt == [Regime.DAY]
    day = analyser.bank.get(Regime.DAY)
    assert day is not None
    assert np.array_equal(before, day.gray)


def test_reference_follows_daylight_while_healthy() -> None:
    cfg = Camera(relearn_tau_s=10.0)
    cam = SimCamera(320, 240, seed=6, drift=0.0)
    analyser = Analyser(cfg)
    gate = GateLogic(bad_hold_s=cfg.bad_hold_s, good_hold_s=cfg.good_hold_s, fresh_s=cfg.fresh_s)
    t = 0.0
    for _ in range(30):
        t += 0.2
        gate.update(t, analyser.analyse(cam.render("normal", t), t, gate.open)[0])
    assert gate.open
    assert analyser.ref is not None
    start = float(analyser.ref.gray.mean())
    for _ in range(150):  # 30 s of a passing cloud: the scene at 85 % light, still "day"
        t += 0.2
        verdict, _ = analyser.analyse(np.asarray(cam.render("normal", t) * 0.85, np.uint8), t,
                                      gate.open)
        gate.update(t, verdict)
        assert gate.open
    day = analyser.bank.get(Regime.DAY)
    assert day is not None
    assert analyser.bank.learnt == [Regime.DAY]
    assert float(day.gray.mean()) < start * 0.9


def test_a_bad_run_dated_from_a_held_sample_closes_when_it_would_have_without_the_hold() -> None:
    """The analyser may report the sample a cover arrived in as held (OK) and date the bad run of
    the next sample from it: the gate then closes at the first sample `bad_hold_s` after the
    arrival, as it would had that sample been bad."""
    held = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
    plain = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
    for gate in (held, plain):
        for k in range(20):
            gate.update(k * 0.2, Verdict.OK)
        assert gate.open
    arrival = 4.0
    assert held.update(arrival, Verdict.OK) is None   # the held sample
    assert plain.update(arrival, Verdict.COVERED) is None
    closed_at = {}
    for k in range(1, 5):
        now = arrival + 0.2 * k
        for name, gate in (("held", held), ("plain", plain)):
            change = gate.update(now, Verdict.COVERED, arrival if name == "held" else None)
            if change is not None and not change.open:
                closed_at.setdefault(name, now)
    assert closed_at == {"held": arrival + 0.6, "plain": arrival + 0.6}
    # without the date the held gate would have closed a sample later
    late = GateLogic(bad_hold_s=0.5, good_hold_s=3.0, fresh_s=2.0)
    for k in range(21):
        late.update(k * 0.2, Verdict.OK)
    assert late.update(arrival + 0.6, Verdict.COVERED) is None
