"""Alignment tolerance: a mounted camera moved within the bounds reads OK, turned beyond them it fails."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd.camera.analysis import Thresholds, Verdict, decide, score
from lockerd.camera.frames import prepare
from lockerd.camera.reference import Reference, make_reference
from lockerd.camera.registration import Bounds, register, registration_ref
from tests.camera.scenes import SIZE, W, expose, view

BOUND = Bounds()
MAX_SHIFT_PX = BOUND.max_shift * W       # at the camera's resolution
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def reference() -> Reference:
    rng = np.random.default_rng(1)
    frames = [prepare(expose(view(), rng), SIZE) for _ in range(5)]
    return make_reference(np.mean(frames, axis=0).astype(np.float32))


@FAST
@given(shift=st.floats(0.0, 0.8), direction=st.floats(0.0, 2 * np.pi), angle=st.floats(-0.8, 0.8),
       seed=st.integers(0, 2**16))
def test_small_shifts_and_rotations_within_the_bound_never_flag(
        reference: Reference, shift: float, direction: float, angle: float, seed: int) -> None:
    """Wind or a slammed door: up to 80 % of each bound at once, with sensor noise."""
    dx, dy = shift * MAX_SHIFT_PX * np.cos(direction), shift * MAX_SHIFT_PX * np.sin(direction)
    frame = expose(view(dx=dx, dy=dy, angle=angle * BOUND.max_rotation_deg),
                   np.random.default_rng(seed))
    s, _ = score(reference, prepare(frame, SIZE), None, bounds=BOUND)
    assert s.aligned == 1.0, s
    assert decide(s, Thresholds(), reference.stats) == (Verdict.OK, "ok"), s


@FAST
@given(turn=st.one_of(
    st.tuples(st.just("rotate"), st.floats(2.0, 6.0)),   # multiples of the rotation bound
    # multiples of the shift bound, up to the edge of the test world: beyond 3.3 bounds the view
    # reaches the world's border and cv2.BORDER_REFLECT mirrors the scene back into it, which no
    # turned camera sees (it once read as the unmoved scene, similarity 0.78, and passed as OK)
    st.tuples(st.just("shift"), st.floats(2.0, 3.3))),
    sign=st.sampled_from([-1.0, 1.0]), seed=st.integers(0, 2**16))
def test_a_turn_beyond_the_bound_fails(reference: Reference, turn: tuple[str, float], sign: float,
                                       seed: int) -> None:
    kind, factor = turn
    pose = ({"angle": sign * factor * BOUND.max_rotation_deg} if kind == "rotate"
            else {"dx": sign * factor * MAX_SHIFT_PX})
    frame = expose(view(**pose), np.random.default_rng(seed))
    s, _ = score(reference, prepare(frame, SIZE), None, bounds=BOUND)
    verdict, _check = decide(s, Thresholds(), reference.stats)
    assert verdict is Verdict.REDIRECTED, (turn, s)


def test_registration_recovers_the_motion_and_leaves_its_inputs_alone() -> None:
    """Also guards against OpenCV 5's phaseCorrelate windowing its inputs in place."""
    rng = np.random.default_rng(2)
    ref = make_reference(prepare(expose(view(), rng), SIZE))
    reg = registration_ref(ref.gray)
    kept = reg.small.copy()
    gray = prepare(expose(view(dx=6.0, dy=-4.0, angle=2.0), rng), SIZE)
    before = gray.copy()
    first = register(reg, gray, BOUND)
    again = register(reg, gray, BOUND)
    assert np.array_equal(kept, reg.small)
    assert np.array_equal(before, gray)
    assert np.allclose(first.matrix, again.matrix)
    # the view's content moves opposite to the camera: 6 px at 320 wide = 3 px at 160
    assert first.dx == pytest.approx(-3.0, abs=0.5)
    assert first.dy == pytest.approx(2.0, abs=0.5)
    assert first.rotation_deg == pytest.approx(-2.0, abs=0.3)
    assert first.within


def test_a_flat_picture_registers_as_no_motion() -> None:
    flat = np.full((SIZE[1], SIZE[0]), 80.0, np.float32)
    motion = register(registration_ref(flat), flat + 1.0, BOUND)
    assert np.all(np.isfinite(motion.matrix))
