"""Frame analysis: property tests on random frames, and each tamper kind against the sim scene."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lockerd.camera.analysis import Scores, Thresholds, Verdict, classify, decide, is_still, score
from lockerd.camera.frames import FrameStats, prepare, prepare_frame
from lockerd.camera.reference import make_reference
from lockerd.camera.registration import Bounds
from lockerd.sim.camera import BENIGN_MODES, TAMPER_MODES, SimCamera

SIZE = (160, 120)
BOUNDS = {
    "brightness": (0, 255), "std": (0, 128), "entropy": (0, 8), "saturated": (0, 1),
    "brightness_ratio": (0, 10), "sharpness_ratio": (0, 10), "edge_ratio": (0, 10),
    "contrast_ratio": (0, 10), "similarity": (-1, 1), "lost": (0, 1), "flat": (0, 1),
    "shift": (0, 1e4), "rotation": (-180, 180), "aligned": (0, 1), "moved_similarity": (-1, 1),
    "beyond": (0, 1e4),
    "change": (-1, 255), "moving": (0, 1), "detail_snr": (0, 1e3), "scene_snr": (0, 1e3),
    "step": (0, 10),
}


def frames() -> st.SearchStrategy[np.ndarray]:
    shapes = st.one_of(
        st.tuples(st.integers(4, 90), st.integers(4, 120)),
        st.tuples(st.integers(4, 90), st.integers(4, 120), st.sampled_from([1, 3, 4])))
    fill = st.integers(0, 255)
    return shapes.flatmap(lambda s: st.one_of(
        arrays(np.uint8, s, elements=fill),                    # arbitrary pixels
        arrays(np.uint8, s, elements=fill, fill=fill),         # mostly constant
    ))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ref=frames(), frame=frames(), prev=st.one_of(st.none(), frames()),
       step=st.one_of(st.none(), st.floats(0, 255)))
def test_scores_are_bounded_and_never_raise_on_random_frames(
        ref: np.ndarray, frame: np.ndarray, prev: np.ndarray | None, step: float | None) -> None:
    reference = make_reference(prepare(ref, SIZE))
    previous = None if prev is None else prepare(prev, SIZE)
    s, compared = score(reference, prepare(frame, SIZE), previous, bounds=Bounds(), step_level=step)
    assert compared.shape == (SIZE[1], SIZE[0])
    assert set(s.as_dict()) == set(BOUNDS)
    for name, (lo, hi) in BOUNDS.items():
        value = getattr(s, name)
        assert math.isfinite(value), name
        assert lo - 1e-3 <= value <= hi + 1e-3, (name, value)
    verdict, check = decide(s, Thresholds(), reference.stats)
    assert isinstance(verdict, Verdict)
    assert (check == "ok") == (verdict is Verdict.OK)
    assert (s.change == -1) == (previous is None)


@settings(max_examples=40, deadline=None)
@given(frame=frames())
def test_a_frame_matches_itself(frame: np.ndarray) -> None:
    g = prepare(frame, SIZE)
    s, _ = score(make_reference(g), g, g, bounds=Bounds())
    assert s.similarity == pytest.approx(1.0, abs=1e-3)
    assert s.lost == 0.0
    assert is_still(s, Thresholds())
    if s.std > 1:
        assert s.sharpness_ratio == pytest.approx(1.0, rel=1e-3)


@pytest.fixture(scope="module")
def scene() -> SimCamera:
    return SimCamera(640, 480)


EXPECTED = {"covered": {Verdict.COVERED, Verdict.DARK}, "partial": {Verdict.COVERED},
            "black": {Verdict.DARK}, "saturated": {Verdict.BLINDED}, "blurred": {Verdict.DEFOCUSED},
            "sprayed": {Verdict.DEFOCUSED, Verdict.SPRAYED, Verdict.COVERED},
            "turned": {Verdict.REDIRECTED}}


@pytest.mark.parametrize("mode", [m for m in TAMPER_MODES if m in EXPECTED])
def test_each_tamper_kind_gets_its_verdict(scene: SimCamera, mode: str) -> None:
    ref = make_reference(prepare(scene.render("normal", 0.0), SIZE))
    s, _ = score(ref, prepare(scene.render(mode, 5.0), SIZE), None, bounds=Bounds())
    assert classify(s, Thresholds(), ref.stats) in EXPECTED[mode], s


@pytest.mark.parametrize("mode", BENIGN_MODES)
def test_benign_modes_and_light_drift_are_ok_even_against_the_day_reference(
        scene: SimCamera, mode: str) -> None:
    """Night, infrared and shake are judged against the day reference until their own regime is
    learnt: they must pass on structure alone."""
    ref = make_reference(prepare(scene.render("normal", 0.0), SIZE))
    for t in (0.0, 30.0, 60.0, 90.0):  # across the lighting drift
        g = prepare(scene.render(mode, t), SIZE)
        prev = prepare(scene.render(mode, t), SIZE)
        s, _ = score(ref, g, prev, bounds=Bounds())
        assert decide(s, Thresholds(), ref.stats) == (Verdict.OK, "ok"), (mode, t, s)
        assert not is_still(s, Thresholds()), "sensor noise must keep consecutive frames apart"


def test_colour_spread_tells_infrared_from_colour(scene: SimCamera) -> None:
    colour = prepare_frame(scene.render("normal", 0.0), SIZE)
    ir = prepare_frame(scene.render("ir", 0.0), SIZE)
    gray_source = prepare_frame(scene.render("normal", 0.0)[:, :, 1], SIZE)
    assert colour.chroma is not None
    assert colour.chroma > 3.0
    assert ir.chroma is not None
    assert ir.chroma < 1.0
    assert gray_source.chroma is None


def _ok_scores(**changes: float) -> Scores:
    """Scores of a frame that plainly shows the scene, with some values changed."""
    base = {name: 0.0 for name in BOUNDS} | {
        "brightness": 120.0, "std": 40.0, "entropy": 7.0, "brightness_ratio": 1.0,
        "sharpness_ratio": 1.0, "edge_ratio": 1.0, "contrast_ratio": 1.0, "similarity": 0.9,
        "aligned": 1.0, "moved_similarity": -1.0, "change": 3.0, "detail_snr": 50.0, "scene_snr": 50.0}
    return Scores(**(base | changes))


def test_no_edge_left_anywhere_is_a_cover_whatever_the_fine_detail() -> None:
    ref = FrameStats(120.0, 40.0, 7.0, 0.0, 1.0, 0.1)
    s = _ok_scores(edge_ratio=0.01, sharpness_ratio=2.0, similarity=0.45)
    assert decide(s, Thresholds(), ref) == (Verdict.COVERED, "no_edges")
    assert decide(_ok_scores(edge_ratio=0.3), Thresholds(), ref) == (Verdict.OK, "ok")


def test_fine_detail_only_at_the_noise_level_with_doubtful_structure_is_a_cover() -> None:
    """An infrared cloth shaded like a smooth scene: similarity 0.3, its noise read as edges and
    detail by the ratios, but nowhere above the noise while the scene would be well above it."""
    ref = FrameStats(120.0, 40.0, 7.0, 0.0, 1.0, 0.1)
    cloth = _ok_scores(similarity=0.32, edge_ratio=0.6, detail_snr=1.3, scene_snr=20.0)
    assert decide(cloth, Thresholds(), ref) == (Verdict.COVERED, "noise_only")
    # the scene itself keeps detail above its noise; a scene dim by nature cannot be told apart
    assert decide(_ok_scores(similarity=0.32, detail_snr=6.0, scene_snr=20.0), Thresholds(), ref)[1] == "ok"
    assert decide(_ok_scores(similarity=0.32, detail_snr=1.3, scene_snr=4.0), Thresholds(), ref)[1] == "ok"
    assert decide(_ok_scores(similarity=0.8, detail_snr=1.3, scene_snr=20.0), Thresholds(), ref)[1] == "ok"


def test_the_detail_cue_reads_a_noisy_cloth_as_noise_and_a_noisy_scene_above_it() -> None:
    """Scores of real frames: a smooth shaded cloth with sensor noise against a scene with edges."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    shading = 150.0 * (1.0 - 0.45 * (((xx - 160) / 160) ** 2 + ((yy - 120) / 120) ** 2))
    scene = shading.copy()
    for x in (60, 150, 250):
        scene[:, x:x + 2] -= 30.0
    ref = make_reference(prepare(np.clip(scene, 0, 255).astype(np.uint8), SIZE))
    def noisy(img: np.ndarray) -> np.ndarray:
        return np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).astype(np.uint8)
    s_scene, _ = score(ref, prepare(noisy(scene), SIZE), None, bounds=Bounds())
    s_cloth, _ = score(ref, prepare(noisy(shading * 0.9), SIZE), None, bounds=Bounds())
    assert s_cloth.detail_snr <= 4.0 < s_scene.detail_snr
    assert s_cloth.scene_snr >= 8.0


def test_a_far_movement_must_explain_the_frame_at_least_as_well_as_none() -> None:
    """A person walking past pulls the fit far off; the unmoved picture still explains the frame."""
    ref = FrameStats(120.0, 40.0, 7.0, 0.0, 1.0, 0.1)
    pulled = _ok_scores(aligned=0.0, moved_similarity=0.55, beyond=4.0, similarity=0.95)
    assert decide(pulled, Thresholds(), ref) == (Verdict.OK, "ok")
    turned = _ok_scores(aligned=0.0, moved_similarity=0.55, beyond=4.0, similarity=0.5)
    assert decide(turned, Thresholds(), ref) == (Verdict.REDIRECTED, "moved")
