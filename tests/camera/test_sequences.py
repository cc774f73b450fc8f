"""Analyser and gate over frame sequences: benign modes keep intake open, tamper modes close it in time.

Each run learns the empty scene, opens the gate, then feeds a few seconds of one mode at the
configured sample rate on an injected clock (no waiting). Benign modes must never close the gate;
tamper modes must close it within bad_hold_s plus two samples (the configured time).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from lockerd.camera.analyser import Analyser
from lockerd.camera.analysis import Verdict
from lockerd.camera.gate import GateLogic
from lockerd.camera.regimes import Regime
from lockerd.config import Camera
from tests.camera.scenes import (
    SIDES,
    Img,
    composite,
    cover,
    expose,
    gray_noise,
    infrared,
    jpeg,
    person,
    tape,
    view,
)

Frames = Callable[[np.random.Generator, int], Img]
CFG = Camera()
STEP = 1.0 / CFG.sample_hz
DIM = 0.15  # a corridor dim by nature: mean gray about 20


def _noisy(rng: np.random.Generator, img: np.ndarray, gain: float = 1.0) -> Img:
    """Read noise plus shot noise (variance proportional to the signal)."""
    lit = img * gain
    sigma = np.sqrt(2.0 ** 2 + np.maximum(lit, 0.0))
    return np.clip(lit + sigma * rng.standard_normal(img.shape).astype(np.float32), 0, 255).astype(np.uint8)


BENIGN: dict[str, Frames] = {
    "noise": lambda rng, i: expose(view(), rng, noise=8.0),
    "shake": lambda rng, i: expose(view(dx=float(rng.uniform(-8, 8)), dy=float(rng.uniform(-8, 8)),
                                        angle=float(rng.uniform(-1.5, 1.5))), rng),
    "exposure": lambda rng, i: expose(view(), rng, gain=float(np.exp(rng.uniform(-0.5, 0.3)))),
    "jpeg": lambda rng, i: jpeg(expose(view(), rng), 20),
    "people": lambda rng, i: expose(cover(view(), 0.3, SIDES[int(rng.integers(len(SIDES)))]), rng),
    "low_light": lambda rng, i: _noisy(rng, view(), max(0.12, 1.0 - i / 20)),
    "infrared": lambda rng, i: gray_noise(infrared(view()), rng, 3.0),
}
TAMPER: dict[str, Frames] = {
    **{f"covered_{side}": (lambda rng, i, side=side: expose(cover(view(), 0.85, side), rng))
       for side in SIDES},
    "covered_full": lambda rng, i: expose(cover(view(), 1.0, "left"), rng),
    "tape": lambda rng, i: expose(tape(view(), 0.9, SIDES[i % len(SIDES)]), rng),
    "capped": lambda rng, i: expose(np.full_like(view(), 6.0), rng),
    "blurred": lambda rng, i: expose(np.asarray(cv2.GaussianBlur(view(), (0, 0), 6.0)), rng),
    "turned": lambda rng, i: expose(view(dx=90.0, angle=12.0), rng),
}


def opened(learn: Frames, seed: int = 0) -> tuple[Analyser, GateLogic, float, np.random.Generator]:
    """An analyser that learnt the scene from `learn` and a gate that opened on it."""
    rng = np.random.default_rng(seed)
    analyser = Analyser(CFG)
    gate = GateLogic(bad_hold_s=CFG.bad_hold_s, good_hold_s=CFG.good_hold_s, fresh_s=CFG.fresh_s)
    t = 0.0
    while not gate.is_open(t):
        t += STEP
        gate.update(t, analyser.analyse(learn(rng, 0), t, gate.open)[0])
        assert t < 30, analyser.judgement
    return analyser, gate, t, rng


def feed(analyser: Analyser, gate: GateLogic, t: float, rng: np.random.Generator, frames: Frames,
         seconds: float) -> tuple[list[tuple[float, bool]], list[Verdict], float]:
    """Feed `seconds` of frames; the gate's changes (time, open) and each verdict."""
    changes, verdicts, t0 = [], [], t
    for i in range(round(seconds / STEP)):
        t += STEP
        verdict, _ = analyser.analyse(frames(rng, i), t, gate.open)
        verdicts.append(verdict)
        change = gate.update(t, verdict, analyser.judgement.since)  # as the guard feeds it
        if change is not None:
            changes.append((t - t0, change.open))
    return changes, verdicts, t


@pytest.mark.parametrize("mode", BENIGN)
def test_benign_mode_keeps_intake_open_over_a_sequence(mode: str) -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, verdicts, t = feed(analyser, gate, t, rng, BENIGN[mode], 8.0)
    assert changes == [], (mode, analyser.judgement, verdicts)
    assert gate.is_open(t)


def test_a_scene_dim_by_nature_keeps_intake_open_over_a_sequence() -> None:
    def dim(rng: np.random.Generator, i: int) -> Img:
        return _noisy(rng, view(dx=float(rng.uniform(-3, 3))), DIM * float(rng.uniform(0.9, 1.1)))

    analyser, gate, t, rng = opened(dim)
    assert analyser.bank.learnt == [Regime.NIGHT]
    changes, verdicts, t = feed(analyser, gate, t, rng, dim, 8.0)
    assert changes == [], verdicts


@pytest.mark.parametrize("mode", TAMPER)
def test_tamper_mode_closes_intake_within_the_configured_time(mode: str) -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, verdicts, _ = feed(analyser, gate, t, rng, TAMPER[mode], 3.0)
    assert changes, (mode, verdicts)
    took, now_open = changes[0]
    assert not now_open
    assert took <= CFG.bad_hold_s + 2 * STEP + 1e-9, (mode, took, verdicts)


def test_a_night_scene_and_its_cover_are_told_apart() -> None:
    """The night regime's own reference: the dim scene stays open, a cover as dim as it closes."""
    def dim(rng: np.random.Generator, i: int) -> Img:
        return _noisy(rng, view(), DIM)

    analyser, gate, t, rng = opened(dim)
    changes, _, t = feed(analyser, gate, t, rng, dim, 3.0)
    assert changes == []
    assert analyser.judgement.reference is Regime.NIGHT
    cloth = cover(view(), 0.9, "bottom-right", (60, 70, 80))
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: _noisy(rng, cloth, DIM), 3.0)
    assert changes, verdicts
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 2 * STEP + 1e-9


def test_a_cover_in_infrared_mode_closes_intake_once_infrared_is_learnt() -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, _, t = feed(analyser, gate, t, rng, BENIGN["infrared"], 4.0)
    assert changes == []
    assert Regime.IR in analyser.bank.learnt
    covered = infrared(cover(view(), 0.85, "top-left"))
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(covered, rng, 3.0), 3.0)
    assert changes, verdicts
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 2 * STEP + 1e-9


def _plain_scene(seed: int = 3) -> np.ndarray:
    """A scene almost without edges (a painted wall, a fundus photograph): smooth shading and a
    few faint thin lines, its texture mostly the shading itself."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    img = 120.0 + 25.0 * np.cos(xx / 70.0) * np.cos(yy / 55.0)
    lines = np.zeros((240, 320), np.float32)
    for _ in range(10):
        p = rng.integers(0, (320, 240), (2, 2))
        cv2.line(lines, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 1.0, 1)
    img = img - 45.0 * cv2.GaussianBlur(lines, (0, 0), 0.8)
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.float32)


def _ir(img: np.ndarray, falloff: float = 0.5) -> np.ndarray:
    """Infrared mode with a strong illuminator fall-off towards the corners."""
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    r2 = ((xx - 160) / 160) ** 2 + ((yy - 120) / 120) ** 2
    gray = img.mean(axis=2) * (1.0 - falloff * r2 / 2.0)
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)


def test_an_infrared_cover_over_a_plain_scene_closes_intake() -> None:
    """The illuminator's fall-off on a cloth is shaped like a plain scene's own shading; with no
    edge left anywhere the frame is a cover, while the uncovered infrared scene stays open."""
    scene = _plain_scene()
    tint = scene * np.asarray((0.9, 1.0, 1.1), np.float32)  # the day picture has colour
    analyser, gate, t, rng = opened(lambda rng, i: expose(tint, rng))
    changes, _, t = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(_ir(scene), rng, 1.5), 4.0)
    assert changes == [], analyser.judgement
    assert analyser.judgement.reference is Regime.IR
    cloth = _ir(np.full_like(scene, 110.0) * np.linspace(0.9, 1.1, 320, dtype=np.float32)[None, :, None])
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(cloth, rng, 1.5), 3.0)
    assert changes, (verdicts, analyser.judgement)
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 2 * STEP + 1e-9


def _stars(seed: int = 5) -> np.ndarray:
    """A scene of point-like texture (a perforated panel, a star field): its structure is lost to
    an alignment error of a pixel."""
    rng = np.random.default_rng(seed)
    img = np.full((240, 320), 30.0, np.float32)
    for _ in range(260):
        x, y = (int(v) for v in rng.integers(0, (320, 240)))
        cv2.circle(img, (x, y), int(rng.integers(1, 3)), float(rng.uniform(90, 230)), -1)
    img = cv2.GaussianBlur(img, (0, 0), 0.7)
    return np.stack([img * 0.9, img, img * 1.1], axis=2).astype(np.float32)


def test_a_person_in_front_of_point_like_texture_keeps_intake_open() -> None:
    """A bright figure over a third of the view pulls the registration a pixel or two off the
    scene; judged unmoved as well, the rest of the scene is still seen."""
    scene = _stars()

    def person(rng: np.random.Generator, i: int) -> Img:
        x = int(rng.integers(0, 200))
        img = scene.copy()
        img[60:, x:x + 110] = np.asarray((150, 170, 200), np.float32) * float(rng.uniform(0.9, 1.1))
        return expose(img, rng)

    analyser, gate, t, rng = opened(lambda rng, i: expose(scene, rng))
    changes, verdicts, t = feed(analyser, gate, t, rng, person, 8.0)
    assert changes == [], (verdicts, analyser.judgement)
    assert gate.is_open(t)


def _walking(share: float, speed: float, x0: float = 60.0) -> Frames:
    """A textured person moving `speed` px per sample across the view (bouncing at its sides)."""
    def frame(rng: np.random.Generator, i: int) -> Img:
        x = (x0 + speed * i) % (2 * 280)
        x = 20 + (x if x <= 280 else 560 - x)
        layer, alpha = person(x, share, swing=0.3 * np.sin(1.3 * i))
        return expose(composite(view(), layer, alpha), rng)
    return frame


@pytest.mark.parametrize(("share", "speed"), [(0.3, 12.0), (0.4, 6.0), (0.4, 2.0)])
def test_a_textured_person_moving_in_front_keeps_intake_open(share: float, speed: float) -> None:
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, verdicts, t = feed(analyser, gate, t, rng, _walking(share, speed), 6.0)
    assert changes == [], (analyser.judgement, verdicts)
    assert gate.is_open(t)


def test_a_persistent_partial_cover_after_a_passer_by_closes_intake_in_time() -> None:
    """The frame a cover arrives in changes, so right after someone walked by it may be deferred
    as passing; the next frames do not change and close intake within one more sample."""
    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, _, t = feed(analyser, gate, t, rng, _walking(0.3, 12.0), 2.0)
    assert changes == []
    cloth = cover(view(), 0.85, "right")
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: expose(cloth, rng), 3.0)
    assert changes, verdicts
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 3 * STEP + 1e-9, (changes, verdicts)


def test_a_region_hiding_the_scene_that_keeps_changing_is_deferred_only_for_a_while() -> None:
    """Something changing in front of nearly all the view (a crowd, a cloth waved about) reads as
    passing for at most PASSING_MAX_S; then intake closes within the gate's hold."""
    from lockerd.camera.analyser import PASSING_MAX_S

    others = [view(seed) for seed in (21, 22, 23)]  # other cabinets: the scene is hidden, content moves

    def crowd(rng: np.random.Generator, i: int) -> Img:
        return expose(np.roll(others[i % 3], 37 * i, axis=1), rng)

    analyser, gate, t, rng = opened(lambda rng, i: expose(view(), rng))
    changes, verdicts, _ = feed(analyser, gate, t, rng, crowd, PASSING_MAX_S + 3.0)
    assert changes, verdicts
    assert not changes[0][1]
    assert 1.0 <= changes[0][0] <= PASSING_MAX_S + CFG.bad_hold_s + 3 * STEP + 1e-9, (changes, verdicts)


def _fundus(lines: int = 6) -> np.ndarray:
    """A fundus-like scene: bright centre falling off towards the rim (an infrared illuminator's
    fall-off on a cloth has the same shape) with a few dark vessels, its only edges."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    img = 150.0 * (1.0 - 0.15 * (((xx - 160) / 160) ** 2 + ((yy - 120) / 120) ** 2))
    drawn = np.zeros((240, 320), np.float32)
    for _ in range(lines):
        p = rng.integers(0, (320, 240), (2, 2))
        cv2.line(drawn, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 1.0, 2)
    img = img - 40.0 * cv2.GaussianBlur(drawn, (0, 0), 1.0)
    return np.repeat(img[:, :, None], 3, axis=2).astype(np.float32)


def test_an_infrared_cover_shaded_like_a_smooth_scene_closes_and_the_noisy_scene_stays_open() -> None:
    """Under infrared with sensor noise the smooth scene keeps detail above the noise and stays open;
    a cloth whose shading is the scene's own fall-off has only noise for detail and closes intake
    within the configured time."""
    scene = _fundus()
    tint = scene * np.asarray((0.9, 1.0, 1.1), np.float32)
    analyser, gate, t, rng = opened(lambda rng, i: expose(tint, rng))
    changes, _, t = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(_ir(scene, 0.35), rng, 3.0), 6.0)
    assert changes == [], analyser.judgement
    assert analyser.judgement.reference is Regime.IR
    cloth = _ir(_fundus(lines=0) * 0.9, 0.35)
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(cloth, rng, 3.0), 3.0)
    assert analyser.judgement.check == "noise_only"  # the edge, contrast and tile rules miss it
    assert changes, (verdicts, analyser.judgement)
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 2 * STEP + 1e-9


def _fundus_ir_opened(seconds: float = 6.0) -> tuple[Analyser, GateLogic, float, np.random.Generator]:
    """The fundus-like scene learnt in colour, then in infrared mode (learnt too), gate open."""
    scene = _fundus()
    tint = scene * np.asarray((0.9, 1.0, 1.1), np.float32)
    analyser, gate, t, rng = opened(lambda rng, i: expose(tint, rng))
    ir = _ir(scene, 0.35)
    changes, _, t = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(ir, rng, 3.0), seconds)
    assert changes == [], analyser.judgement
    assert analyser.judgement.reference is Regime.IR
    return analyser, gate, t, rng


@pytest.mark.parametrize("reduced", [False, True])
def test_an_infrared_cover_darker_than_the_scene_closes_intake_on_the_step_down(reduced: bool) -> None:
    """A dark cloth in front of a smooth infrared scene looks, from one frame, like the light
    falling: at its own level the scene's detail would sink into the noise. It arrived between two
    samples, though, so it is judged at the light before the step and closes intake in time. Also
    when the cover's frames arrive already at the analysis size (decoded at reduced size)."""
    analyser, gate, t, rng = _fundus_ir_opened()
    cloth = _ir(_fundus(lines=0) * 0.35, 0.35)

    def frame(rng: np.random.Generator, i: int) -> Img:
        img = gray_noise(cloth, rng, 3.0)
        return np.asarray(cv2.resize(img, (160, 120), interpolation=cv2.INTER_AREA)) if reduced else img

    changes, verdicts, _ = feed(analyser, gate, t, rng, frame, 4.0)
    assert analyser.judgement.check == "noise_after_step", analyser.judgement
    assert all(v is Verdict.COVERED for v in verdicts), verdicts  # latched while the cloth stays
    assert changes, verdicts
    assert not changes[0][1]
    assert changes[0][0] <= CFG.bad_hold_s + 2 * STEP + 1e-9


def test_light_falling_slowly_on_a_smooth_infrared_scene_keeps_intake_open() -> None:
    """The same darkness reached as light falls (no step between two samples) sinks the scene's
    detail into the noise by nature: no cover, intake stays open."""
    analyser, gate, t, rng = _fundus_ir_opened()
    scene = _ir(_fundus(), 0.35)
    changes, verdicts, _ = feed(analyser, gate, t, rng,
                                lambda rng, i: gray_noise(scene * max(0.3, 1.0 - i / 12), rng, 3.0), 6.0)
    assert changes == [], (verdicts, analyser.judgement)


def test_light_switched_down_in_one_step_keeps_intake_open_while_the_scene_is_seen() -> None:
    """A step down in light latches the light before it, but a scene whose edges still stand above
    the noise is no cover: the step alone closes nothing."""
    analyser, gate, t, rng = _fundus_ir_opened()
    scene = _ir(_fundus(), 0.35)
    changes, verdicts, _ = feed(analyser, gate, t, rng, lambda rng, i: gray_noise(scene * 0.4, rng, 3.0), 4.0)
    assert changes == [], (verdicts, analyser.judgement)
