"""Pure frame analysis for the camera guard: scores of one frame against a reference, and a verdict.

A frame is first aligned to the reference within bounds (`registration`), then compared with it
structurally, globally and tile by tile (`reference`). Whether the scene can still be seen is
decided by its structure, against the reference of the frame's light regime; brightness and
uniformity only name the reason (dark, covered) once the structure is gone, so a scene dark or
flat by nature stays OK while a cover in front of it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from lockerd.camera.frames import FrameStats, Gray, frame_stats
from lockerd.camera.order import median
from lockerd.camera.reference import Reference, compare
from lockerd.camera.registration import IDENTITY, Bounds, Motion, align, register

_EPS = 1e-6
_CV_OFFSET = 2.0
_MOVED_MIN, _MOVED_MARGIN, _MOVED_FAR = 0.5, 0.1, 3.0
"""A movement found beyond the bounds counts as the camera turned when compensating it explains
the picture (similarity at least _MOVED_MIN): the scene is there, only too far off. A person close
to the lens pulls the fit a little beyond the bounds while the unmoved picture explains the frame
as well, so a movement up to _MOVED_FAR times the shift bound must explain it clearly better than
none (by _MOVED_MARGIN). A larger displacement is no such artefact: it counts even when the scene
repeats itself (a row of identical doors one door further looks alike), as long as it explains the
picture at least as well as no movement (a person walking past can pull the fit far off while the
unmoved picture still matches)."""
_NO_EDGES = 0.2
"""Edges at or below this share of `edge_ratio_min` (a twentieth of the scene's by default): covered."""
_UNMOVED_BELOW = 0.5
"""A registered frame this dissimilar is also compared unmoved, and judged by the better of the two:
registration is an estimate that something large in front of the scene can pull a few pixels off
(point-like textures, a star field or a printed page, lose their structure to such an error), while
"the camera did not move" is the prior. Only suspicious frames pay for the second comparison."""
_NOISE_SNR, _NOISE_BELOW = 4.0, 0.5
"""Covered when the frame's most detailed tile holds at most four times the fine-detail energy of
its plainest tiles (`detail_snr`: nothing anywhere stands above the sensor noise) while its structure
is doubtful (similarity below 0.5). A smooth cloth lit by an infrared illuminator keeps a fall-off
shaped like a plain scene's shading (similarity 0.3-0.35 on a fundus photograph) and its noise reads
as edges and detail relative to its little contrast; measured against the noise instead, that
detail is the noise. Chosen on the tuning scenes: full covers reach at most 2.4, benign frames
below 0.5 similarity at least 130 and the plainest benign frames (grass, brick) 1.5-2 at 0.9.
The cue speaks only where the learnt scene, at the frame's light, would stand at least twice the
cut-off above the frame's noise (`scene_snr`): a scene dim by nature or in falling light sinks its
own detail into the noise and would read as a cover."""
_MOVING_FACTOR, _MOVING_FLOOR = 3.0, 1.0
"""A tile changed when its mean absolute change since the previous sample exceeds three times the
median tile's (the noise, on a mostly static view) plus one gray level (quantisation)."""


class Verdict(StrEnum):
    """What one sample says about the camera; everything but OK closes the intake gate."""

    OK = "ok"
    LEARNING = "learning"    # no reference of the empty scene yet: fail closed
    DOWN = "down"            # no frame (unplugged, not running)
    FROZEN = "frozen"        # frames arrive but the picture does not change at all
    BLINDED = "blinded"      # saturated (torch, laser, overexposure)
    DARK = "dark"            # lens covered with something opaque or lights out
    COVERED = "covered"      # uniform picture, or most of the view flattened: cloth, tape, hand
    DEFOCUSED = "defocused"  # edge energy gone: focus turned, grease, spray on the lens
    SPRAYED = "sprayed"      # contrast veiled by paint or fog on the lens
    REDIRECTED = "redirected"  # the camera looks somewhere else

    @property
    def alert_reason(self) -> str | None:
        """Intake-closed reason (alert kind of docs/mqtt.md) for this verdict."""
        if self is Verdict.OK:
            return None
        if self is Verdict.LEARNING:
            return "camera_starting"
        if self in (Verdict.DOWN, Verdict.FROZEN):
            return "camera_down"
        return "camera_obstructed"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision thresholds (from the [camera] config section)."""

    dark_brightness: float = 6.0
    dark_ratio: float = 0.35
    covered_std: float = 2.0
    covered_entropy: float = 2.0
    saturated_fraction: float = 0.45
    blinded_brightness: float = 235.0
    sharpness_ratio_min: float = 0.25
    edge_ratio_min: float = 0.25
    contrast_ratio_min: float = 0.45
    similarity_min: float = 0.25
    tile_similarity_min: float = 0.3
    covered_lost: float = 0.5
    redirected_lost: float = 0.85
    frozen_diff: float = 0.05


@dataclass(frozen=True, slots=True)
class Scores:
    """Everything the verdict is decided from; all values bounded (see the tests' BOUNDS)."""

    brightness: float
    std: float
    entropy: float
    saturated: float
    brightness_ratio: float  # vs reference, 0..10
    sharpness_ratio: float  # fine detail vs reference, median over the tiles, light-corrected, 0..10
    edge_ratio: float       # vs reference, 0..10
    contrast_ratio: float   # coefficient of variation vs reference, 0..10
    similarity: float       # texture-weighted SSIM structure term vs reference (aligned), -1..1
    lost: float             # share of the reference's textured tiles not showing it any more, 0..1
    flat: float             # share of those tiles flattened (something uniform in front), 0..1
    shift: float            # camera movement found by registration, analysis pixels, 0..
    rotation: float         # degrees, -180..180
    aligned: float          # 1 when the movement was within bounds and compensated, else 0
    moved_similarity: float  # similarity had a movement beyond the bounds been compensated (-1: none)
    beyond: float           # the movement's shift in multiples of the shift bound (0: within), 0..1e4
    change: float           # mean absolute difference to the previous sample, 0..255 (-1: none)
    moving: float = 0.0     # share of the lost tiles whose content changed since the previous sample, 0..1
    detail_snr: float = 1e3  # most detailed tile's fine detail over the frame's noise floor, 0..1e3
    scene_snr: float = 1e3   # the same for the learnt scene's most detailed tile at this light, 0..1e3
    step: float = 0.0        # mean gray over the last good sample's after a step down (0: no step), 0..10

    def as_dict(self) -> dict[str, float]:
        """Rounded, JSON-able."""
        return {name: round(float(getattr(self, name)), 4) for name in self.__slots__}


def _ratio(value: float, ref: float) -> float:
    return min(max(value / (ref + _EPS), 0.0), 10.0)  # builtins: np.clip on a scalar costs ~10 µs


def score(ref: Reference, gray: Gray, previous: Gray | None, *, bounds: Bounds | None = None,
          tile_min: float = 0.3, step_level: float | None = None) -> tuple[Scores, Gray]:
    """All scores of an analysis frame against the reference (and the previous sample).

    Returns the scores and the frame as compared (aligned into the reference's geometry when the
    camera moved within `bounds`; `bounds` None compares without registration). `step_level`: the
    mean gray of the last good sample when this frame is a step darker than it (see `analyser`):
    light does not fall that fast, so the scene is taken to be lit as it was then.
    """
    st = frame_stats(gray)
    rs = ref.stats
    change, diff = -1.0, None
    if previous is not None and previous.shape == gray.shape:
        diff = np.asarray(cv2.absdiff(gray, previous), np.float32)
        change = float(cv2.mean(diff)[0])
    motion: Motion = IDENTITY if bounds is None else register(ref.reg, gray, bounds)
    compared, valid = gray, None
    if motion.within and not motion.negligible:
        compared = align(gray, motion)
        valid = align(np.ones_like(gray), motion)
    structure = compare(ref, compared, valid, tile_min, step_level)
    if valid is not None and structure.similarity < _UNMOVED_BELOW:
        # the fit may have followed something in front (a person close to the lens) rather than
        # the scene: the unmoved picture is the other hypothesis, and the one explaining more wins
        unmoved = compare(ref, gray, None, tile_min, step_level)
        if unmoved.similarity > structure.similarity:
            compared, structure = gray, unmoved
    moved, beyond = -1.0, 0.0
    if not motion.within:  # rare: would the scene be there, had the camera not moved this far?
        moved = compare(ref, align(gray, motion), align(np.ones_like(gray), motion), tile_min).similarity
        if bounds is not None and bounds.max_shift > 0:
            beyond = min(motion.shift / (bounds.max_shift * gray.shape[1]), 1e4)
    lost_tiles = structure.lost_tiles
    moving = 0.0
    if diff is not None and lost_tiles is not None and lost_tiles.any():
        moving = moving_share(tile_change(diff, ref.tiles), lost_tiles)
    # contrast over level: a veil of paint adds light and takes contrast, less light takes both
    # alike (the offset only keeps a black frame's ratio defined)
    cv_now = st.std / (st.brightness + _CV_OFFSET)
    cv_ref = rs.std / (rs.brightness + _CV_OFFSET)
    return Scores(
        brightness=st.brightness,
        std=st.std,
        entropy=st.entropy,
        saturated=st.saturated,
        brightness_ratio=_ratio(st.brightness + 1.0, rs.brightness + 1.0),
        sharpness_ratio=structure.sharpness,
        edge_ratio=_ratio(st.edge_density, rs.edge_density),
        contrast_ratio=_ratio(cv_now, cv_ref),
        similarity=structure.similarity,
        lost=structure.lost,
        flat=structure.flat,
        shift=float(min(motion.shift, 1e4)),
        rotation=float(motion.rotation_deg),
        aligned=1.0 if motion.within else 0.0,
        moved_similarity=moved,
        beyond=beyond,
        change=change,
        moving=moving,
        detail_snr=structure.detail_snr,
        scene_snr=structure.scene_snr,
        step=0.0 if step_level is None else _ratio(st.brightness + 1.0, step_level + 1.0),
    ), compared


def tile_change(diff: Gray, tiles: tuple[int, int]) -> npt.NDArray[np.float32]:
    """Mean absolute change since the previous sample, per tile."""
    return np.asarray(cv2.resize(diff, tiles, interpolation=cv2.INTER_AREA), np.float32)


def moving_share(per_tile: npt.NDArray[np.float32], lost: npt.NDArray[np.bool_] | None) -> float:
    """Share of the lost tiles whose content changed since the previous sample beyond the noise.

    The noise is read on the frame itself: the median tile's change (most of the view is the
    static scene; when a light change moves every tile, nothing stands out and nothing counts as
    moving). A cover stays put relative to the lens, so after the frame it arrived in its tiles
    change by sensor noise only; a person in front moves, sways, swings an arm.
    """
    if lost is None or not lost.any():
        return 0.0
    floor = _MOVING_FACTOR * median(per_tile) + _MOVING_FLOOR
    return float(np.count_nonzero((per_tile > floor) & lost)) / float(np.count_nonzero(lost))


def changed_share(per_tile: npt.NDArray[np.float32], textured: npt.NDArray[np.bool_],
                  quiet: float | None) -> float:
    """Share of the scene's textured tiles whose change (`per_tile`) exceeds the noise.

    The noise is the mean change between good samples (`quiet`, a static view), not the change's
    own median: when the camera turns, every tile changes and a median read on the change itself
    would call all of it noise. Without a quiet pair yet, that median has to do.
    """
    n = int(np.count_nonzero(textured))
    if n == 0:
        return 0.0
    base = median(per_tile) if quiet is None else quiet
    floor = _MOVING_FACTOR * base + _MOVING_FLOOR
    return float(np.count_nonzero((per_tile > floor) & textured)) / float(n)


def blinded(st: FrameStats, t: Thresholds) -> bool:
    """Saturated or too bright to show anything, whatever the scene (also refuses learning)."""
    return st.saturated >= t.saturated_fraction or st.brightness >= t.blinded_brightness


def decide(s: Scores, t: Thresholds, ref: FrameStats) -> tuple[Verdict, str]:
    """The verdict of one frame (ignoring time: frozen needs time, see `is_still`) and the check
    that decided it."""
    structure_gone = (s.flat >= t.covered_lost or s.lost >= t.redirected_lost
                      or s.similarity <= t.similarity_min)
    if s.brightness >= t.blinded_brightness and ref.brightness < t.blinded_brightness:
        return Verdict.BLINDED, "brightness"
    if s.saturated >= t.saturated_fraction and s.saturated - ref.saturated >= t.saturated_fraction / 2:
        return Verdict.BLINDED, "saturation"
    if structure_gone:  # the scene cannot be seen: say why, the light first
        if s.brightness <= t.dark_brightness:
            return Verdict.DARK, "black"
        if s.brightness_ratio <= t.dark_ratio:
            return Verdict.DARK, "darker_than_regime"
        if s.std <= t.covered_std or s.entropy <= t.covered_entropy:
            return Verdict.COVERED, "uniform"
        if s.flat >= t.covered_lost:
            return Verdict.COVERED, "tiles_flattened"
    # a lens out of focus loses fine detail everywhere and its strong edges with it; either alone
    # also follows the scene (a plain figure in front, infrared light that flattens some textures)
    if s.sharpness_ratio <= t.sharpness_ratio_min and s.edge_ratio <= t.edge_ratio_min * 2:
        return Verdict.DEFOCUSED, "sharpness"
    if s.edge_ratio <= t.edge_ratio_min and s.sharpness_ratio <= t.sharpness_ratio_min * 2:
        return Verdict.DEFOCUSED, "edges"
    # no strong edge left anywhere, whatever the fine detail says (sensor noise on a smooth cloth is
    # "detail" relative to its little contrast): nothing of any scene is in focus. A smooth cloth lit
    # by an infrared illuminator keeps a fall-off shaped like a plain scene's own shading
    if s.edge_ratio <= t.edge_ratio_min * _NO_EDGES:
        return Verdict.COVERED, "no_edges"
    # fine detail nowhere above the sensor noise, and the structure doubtful: a smooth cover whose
    # shading imitates a plain scene's, its noise read as detail by the ratios above
    # (after a step down in light, `scene_snr` is read at the light before the step: see `analyser`)
    if s.detail_snr <= _NOISE_SNR and s.scene_snr >= 2 * _NOISE_SNR and s.similarity < _NOISE_BELOW:
        return Verdict.COVERED, "noise_after_step" if s.step > 0 else "noise_only"
    if s.contrast_ratio <= t.contrast_ratio_min:
        return Verdict.SPRAYED, "contrast"
    margin = 0.0 if s.beyond >= _MOVED_FAR else _MOVED_MARGIN
    if s.moved_similarity >= _MOVED_MIN and s.moved_similarity >= s.similarity + margin:
        return Verdict.REDIRECTED, "moved"
    if s.lost >= t.redirected_lost:
        return Verdict.REDIRECTED, "tiles_lost"
    if s.similarity <= t.similarity_min:
        return Verdict.REDIRECTED, "similarity"
    return Verdict.OK, "ok"


def classify(s: Scores, t: Thresholds, ref: FrameStats) -> Verdict:
    """The verdict of one frame, ignoring time (frozen needs time: see `is_still`)."""
    return decide(s, t, ref)[0]


def is_still(s: Scores, t: Thresholds) -> bool:
    """True when this sample is (near-)identical to the previous one: sensor noise is missing."""
    return 0.0 <= s.change <= t.frozen_diff
