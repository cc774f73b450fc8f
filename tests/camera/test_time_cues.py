"""Cues read over time: a movement beyond the bounds is the camera's only when the whole view changed.

A camera that turns moves every textured part of the view between two samples; a person close to
the lens over a repetitive texture can pull the registration beyond its bounds while the rest of
the scene stays exactly where it was. (The other time cue, the step down in light, is tested on
real frame sequences in test_sequences.py.)
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lockerd.camera import analyser as analyser_module
from lockerd.camera.analyser import MOVED_CHANGED, Analyser
from lockerd.camera.analysis import Scores, Verdict, changed_share, tile_change
from lockerd.camera.reference import make_reference
from lockerd.config import Camera
from tests.camera.scenes import SIZE, cover, expose, view

STEP = 0.2


def _tiles(frame: np.ndarray, previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = make_reference(np.asarray(previous, np.float32))
    diff = np.abs(np.asarray(frame, np.float32) - np.asarray(previous, np.float32))
    return tile_change(diff, ref.tiles), ref.textured


def _gray(img: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.resize(img.mean(axis=2), SIZE, interpolation=cv2.INTER_AREA), np.float32)


def test_a_turned_camera_changes_every_textured_tile_and_a_partial_cover_does_not() -> None:
    rng = np.random.default_rng(0)
    before = _gray(expose(view(), rng).astype(np.float32))
    quiet_pair = _gray(expose(view(), rng).astype(np.float32))
    quiet = float(np.abs(quiet_pair - before).mean())  # the analyser's noise: mean change, good pair
    turned = _gray(expose(view(dx=40.0, angle=6.0), rng).astype(np.float32))
    per_tile, textured = _tiles(turned, before)
    assert changed_share(per_tile, textured, quiet) >= 0.9
    covered = _gray(expose(cover(view(), 0.35, "left"), rng).astype(np.float32))
    per_tile, textured = _tiles(covered, before)
    assert changed_share(per_tile, textured, quiet) < MOVED_CHANGED
    # without a quiet pair the frame's own median is the noise: a turn then reads as noise
    per_tile, textured = _tiles(turned, before)
    assert changed_share(per_tile, textured, None) < 0.5


class _Scripted:
    """Stands in for `analysis.score`: hands out prepared scores in order (the decision is real)."""

    def __init__(self, scores: list[Scores]) -> None:
        self.scores = scores

    def __call__(self, ref: object, gray: np.ndarray, previous: object,
                 **kw: object) -> tuple[Scores, np.ndarray]:
        return self.scores.pop(0), gray


def _plain(**changes: float) -> Scores:
    base = dict(brightness=120.0, std=40.0, entropy=7.0, saturated=0.0, brightness_ratio=1.0,
                sharpness_ratio=1.0, edge_ratio=1.0, contrast_ratio=1.0, similarity=0.9, lost=0.0,
                flat=0.0, shift=0.0, rotation=0.0, aligned=1.0, moved_similarity=-1.0, beyond=0.0,
                change=0.8, moving=0.0, detail_snr=50.0, scene_snr=50.0)
    return Scores(**(base | changes))  # type: ignore[arg-type]


PULLED = _plain(aligned=0.0, moved_similarity=0.56, beyond=3.2, similarity=0.54, shift=25.0, lost=0.7)
"""What registration says of a person close to the lens over a repetitive texture, and of a camera
turned a little beyond the bounds alike: only the frames tell them apart."""


@pytest.mark.parametrize(("what", "expected"), [("person", (Verdict.OK, "ok")),
                                                ("turned", (Verdict.REDIRECTED, "moved"))])
def test_a_movement_beyond_the_bounds_needs_the_whole_view_to_change(
        monkeypatch: pytest.MonkeyPatch, what: str, expected: tuple[Verdict, str]) -> None:
    """Most of the view unchanged since the last good sample: the fit followed something in front.
    A camera left turned stays judged moved on every later sample (compared with the last good
    sample, not the previous one)."""
    rng = np.random.default_rng(1)
    a = Analyser(Camera())
    t = 0.0
    for _ in range(Camera().learn_frames):
        t += STEP
        a.analyse(expose(view(), rng), t, True)
    monkeypatch.setattr(analyser_module, "score", _Scripted([_plain(), _plain()] + [PULLED] * 3))
    shown = {"person": cover(view(), 0.35, "left"), "turned": view(dx=40.0, angle=6.0)}[what]
    judged = []
    for i in range(5):
        t += STEP
        verdict, _ = a.analyse(expose(view() if i < 2 else shown, rng), t, True)
        judged.append((verdict, a.judgement.check))
    assert judged[:2] == [(Verdict.OK, "ok"), (Verdict.OK, "ok")]
    assert judged[2:] == [expected] * 3
