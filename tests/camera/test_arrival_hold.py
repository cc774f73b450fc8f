"""The sample something arrives in is held for one sample: a passer-by moves on, a cover stays.

From one sample a smooth figure close to the lens cannot be told from a cloth over the same part
of the view; the next sample tells them apart. Holding costs a cover no time: its bad run is dated
from the held sample and the gate closes at the same sample as without the hold.
"""

from __future__ import annotations

import numpy as np
import pytest

from lockerd.camera import analyser as analyser_module
from lockerd.camera.analyser import Analyser
from lockerd.camera.analysis import Verdict
from lockerd.camera.gate import GateLogic
from lockerd.config import Camera
from tests.camera.scenes import SIDES, Img, cover, expose, view
from tests.camera.test_sequences import CFG, STEP, opened

COLOURS = ((40, 60, 90), (200, 180, 150), (90, 150, 60), (150, 70, 70), (120, 120, 160))


def _jumping_figure(rng: np.random.Generator, i: int) -> Img:
    """A smooth figure over half the view, somewhere else and in other clothes every sample."""
    return expose(cover(view(), 0.5, SIDES[(3 * i) % len(SIDES)], COLOURS[i % len(COLOURS)]), rng)


def _run(analyser: Analyser, gate: GateLogic, t: float, rng: np.random.Generator,
         frames: list[Img]) -> tuple[list[tuple[Verdict, str]], float | None, float]:
    """Feed `frames` one sample apart: (verdict, check) of each, when the gate closed, the end."""
    seen, closed = [], None
    for frame in frames:
        t += STEP
        verdict, _ = analyser.analyse(frame, t, gate.open)
        seen.append((verdict, analyser.judgement.check))
        change = gate.update(t, verdict, analyser.judgement.since)
        if change is not None and not change.open and closed is None:
            closed = t
    return seen, closed, t


def test_a_smooth_figure_jumping_about_in_front_is_never_judged_bad(monkeypatch: pytest.MonkeyPatch) -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    frames = [_jumping_figure(rng, i) for i in range(15)]
    seen, closed, _ = _run(analyser, gate, t, rng, frames)
    assert all(v is Verdict.OK for v, _ in seen), seen
    assert closed is None
    assert "held" in {c for _, c in seen}, seen
    # without the hold the sample the figure arrives in is judged as a cover would be
    monkeypatch.setattr(analyser_module, "HOLD_UNCHANGED_MIN", 1.01)
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    seen, _, _ = _run(analyser, gate, t, rng, frames)
    assert any(v is not Verdict.OK for v, _ in seen), seen


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_a_partial_cover_left_in_place_closes_intake_at_the_same_sample_as_without_the_hold(
        monkeypatch: pytest.MonkeyPatch, side: str) -> None:
    closed_at = {}
    for hold in (True, False):
        if not hold:
            monkeypatch.setattr(analyser_module, "HOLD_UNCHANGED_MIN", 1.01)
        analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
        arrival = t + STEP
        cloth = cover(view(), 0.6, side)
        seen, closed, _ = _run(analyser, gate, t, rng, [expose(cloth, rng) for _ in range(6)])
        if hold:
            assert seen[0] == (Verdict.OK, "held"), seen
            assert all(v is not Verdict.OK for v, _ in seen[1:]), seen
        else:
            assert all(v is not Verdict.OK for v, _ in seen), seen
        assert closed is not None, seen
        closed_at[hold] = round(closed - arrival, 6)
    assert closed_at[True] == closed_at[False] <= CFG.bad_hold_s + STEP + 1e-9, closed_at


@pytest.mark.parametrize("frame", [
    lambda rng: expose(cover(view(), 1.0, "left"), rng),        # a cloth over the whole view
    lambda rng: expose(view(dx=90.0, angle=12.0), rng),           # the camera turned away
])
def test_what_leaves_nothing_of_the_view_as_it_was_is_judged_on_its_first_sample(frame: object) -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    make = frame  # type: ignore[assignment]
    seen, _, _ = _run(analyser, gate, t, rng, [make(rng) for _ in range(2)])  # type: ignore[operator]
    assert seen[0][0] is not Verdict.OK, seen


def test_nothing_is_held_when_the_gate_holds_no_bad_verdict() -> None:
    """With `bad_hold_s` 0 the next sample would close intake later than the arrival: no hold."""
    cfg = Camera(bad_hold_s=0.0)
    rng = np.random.default_rng(0)
    analyser = Analyser(cfg)
    gate = GateLogic(bad_hold_s=0.0, good_hold_s=cfg.good_hold_s, fresh_s=cfg.fresh_s)
    t = 0.0
    while not gate.is_open(t):
        t += STEP
        gate.update(t, analyser.analyse(expose(view(), rng), t, gate.open)[0])
    cloth = cover(view(), 0.7, "left")
    seen, closed, _ = _run(analyser, gate, t, rng, [expose(cloth, rng) for _ in range(2)])
    assert seen[0][0] is not Verdict.OK, seen
    assert closed == pytest.approx(t + STEP)


class _Stepped:
    """A frame source on a stepped clock: the frame the test shows, one new one per clock step."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.frame: Img | None = None

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to release."""

    def latest(self) -> tuple[float, Img] | None:
        return None if self.frame is None else (self.clock[0], self.frame)


async def test_the_guard_dates_a_cover_from_its_held_sample() -> None:
    """End to end through the guard: the cover's first sample is held, and intake closes at the
    first sample `bad_hold_s` after it (a guard dropping the date would close a sample later)."""
    from lockerd.app.events import EventBus
    from lockerd.camera.guard import CameraGuard

    clock = [0.0]
    source = _Stepped(clock)
    guard = CameraGuard(CFG, source, EventBus(), clock=lambda: clock[0])
    rng = np.random.default_rng(3)
    await guard.start()
    try:
        while not guard.is_open():
            clock[0] += STEP
            source.frame = expose(view(), rng)
            await guard.sample_once()
            assert clock[0] < 30
        cloth = cover(view(), 0.6, "left")
        arrival, checks = clock[0] + STEP, []
        while guard.is_open():
            clock[0] += STEP
            source.frame = expose(cloth, rng)
            await guard.sample_once()
            checks.append(guard.status()["check"])  # what `lockerctl camera` shows
            assert clock[0] - arrival < 3
        assert checks[0] == "held", checks
        first_due = arrival + STEP * np.ceil(CFG.bad_hold_s / STEP - 1e-9)
        assert clock[0] == pytest.approx(first_due), (checks, clock[0] - arrival)
    finally:
        await guard.stop()
