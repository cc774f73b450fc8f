"""The learnt empty scene and the structural comparison of an (aligned) frame with it, tile by tile.

Every constant here is relative to the reference's own contrast, so a scene dim by nature is
compared as strictly as a bright one: the SSIM stabiliser and the texture weights scale with the
reference's standard deviation instead of the 0..255 range (a dim corridor's structure would
otherwise drown in a stabiliser sized for daylight and a black cloth would "match" it).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from lockerd.camera.frames import FrameStats, Gray, blur, frame_stats
from lockerd.camera.order import median, quantile
from lockerd.camera.registration import RegistrationRef, registration_ref

TILE_PX = 20
"""Tile edge in analysis pixels (160x120 gives 8x6 tiles): a hand or cloth covers whole tiles."""
_EPS = 1e-6
_TEXTURED = 0.25       # a tile is judged when its local contrast is at least this share of the scene's
_FLAT = 0.2            # local contrast below this share of the reference's (light-corrected): flattened
_MIN_VALID = 0.5       # a tile needs this share of pixels seen after alignment to be judged
_SEEN = 0.6            # a textured tile this similar is plainly the scene (light gain read there)
_C3_SHARE = 0.12       # SSIM's (0.03 * range): the range taken as four standard deviations
_GAIN_FLOOR = 0.5        # the contrast gain read on seen tiles is at least this share of the level's
_DETAIL_QUANTILE = 0.75  # the tiles' fine detail is read at their upper quartile
_DETAIL_FLOOR = 0.25     # contrast² floor of a tile's detail measure (quantisation, not structure)
_C3_FLOOR = 1e-2       # keeps the structure term defined on a frame without any contrast
_NOISE_QUANTILE = 0.1    # the plainest tenth of the tiles gives the frame's noise floor of fine detail
_QUANT_ENERGY = 80.0 / 12.0  # Laplacian energy of 8-bit rounding alone (the floor of any noise)


@dataclass(frozen=True, slots=True)
class Reference:
    """The learnt empty scene of one light regime and what each comparison with it needs."""

    gray: Gray
    centred: Gray                          # gray minus its mean: local statistics keep float precision
    mu: Gray                               # local mean of `centred`
    sigma2: Gray
    sigma: Gray                            # local standard deviation (square root of sigma2)
    weight: Gray
    stats: FrameStats
    c3: float                              # SSIM structure stabiliser, sized to this scene's contrast
    reg: RegistrationRef
    tiles: tuple[int, int]                 # (columns, rows)
    tile_weight: npt.NDArray[np.float32]   # mean texture weight per tile
    tile_contrast: npt.NDArray[np.float32]  # mean local standard deviation per tile
    tile_level: npt.NDArray[np.float32]    # mean gray per tile
    tile_energy: npt.NDArray[np.float32]   # mean squared Laplacian per tile (fine detail)
    textured: npt.NDArray[np.bool_]        # tiles with enough texture to be judged


@dataclass(frozen=True, slots=True)
class Structure:
    """How much of the reference's structure an aligned frame still shows."""

    similarity: float  # texture-weighted SSIM structure term, -1..1
    lost: float        # share of the judged tiles whose structure is gone, 0..1
    flat: float        # share of the judged tiles flattened (something uniform in front), 0..1
    sharpness: float   # median over the judged tiles of fine detail kept (light-corrected), 0..10
    judged: int        # number of tiles judged
    lost_tiles: npt.NDArray[np.bool_] | None = None  # which tiles are lost (None: none judged)
    detail_snr: float = 1e3  # most detailed tile's fine detail over the frame's noise floor, 0..1e3
    scene_snr: float = 1e3   # what the learnt scene's most detailed tile would give at this light, 0..1e3


def tile_grid(shape: tuple[int, ...]) -> tuple[int, int]:
    """(columns, rows) of the tile grid for an analysis frame of this shape."""
    h, w = shape[:2]
    return max(4, round(w / TILE_PX)), max(3, round(h / TILE_PX))


def _tile_mean(img: npt.NDArray[np.float32], tiles: tuple[int, int]) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.resize(img, tiles, interpolation=cv2.INTER_AREA), dtype=np.float32)


def _energy(gray: Gray, tiles: tuple[int, int]) -> npt.NDArray[np.float32]:
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    return _tile_mean(np.asarray(lap * lap, np.float32), tiles)


def make_reference(gray: Gray) -> Reference:
    """Precompute what each comparison with the reference needs."""
    gray = np.ascontiguousarray(gray, dtype=np.float32)
    stats = frame_stats(gray)
    level = max(stats.std, 4.0)  # floor: float rounding of E[x²] - E[x]² must not count as structure
    centred = np.asarray(gray - np.float32(stats.brightness), np.float32)
    mu = blur(centred)
    sigma2 = np.maximum(blur(centred * centred) - mu * mu, 0.0).astype(np.float32)
    local = np.sqrt(sigma2).astype(np.float32)
    weight = (local + 0.05 * level).astype(np.float32)
    c3 = (_C3_SHARE * level) ** 2 / 2.0
    tiles = tile_grid(gray.shape)
    tile_contrast = _tile_mean(local, tiles)
    textured = tile_contrast >= _TEXTURED * level
    if not textured.any():  # a featureless scene: judge every tile rather than none
        textured = np.ones_like(textured)
    return Reference(gray.copy(), centred, mu, sigma2, local, weight, stats, c3, registration_ref(gray),
                     tiles, _tile_mean(weight, tiles), tile_contrast, _tile_mean(gray, tiles),
                     _energy(gray, tiles), textured)


def blend_reference(ref: Reference, gray: Gray, alpha: float) -> Reference:
    """Move the reference a step `alpha` (0..1) towards the (aligned) frame (daylight drift)."""
    a = float(np.clip(alpha, 0.0, 1.0))
    mixed = cv2.addWeighted(ref.gray, 1.0 - a, gray, a, 0.0)
    return make_reference(np.asarray(mixed, dtype=np.float32))


def compare(ref: Reference, gray: Gray, valid: Gray | None, tile_min: float,
            light_level: float | None = None) -> Structure:
    """Structure of an aligned frame against the reference, globally and per tile.

    Similarity: texture-weighted mean of the SSIM structure term (blind to light gain and offset).
    Flat: share of the reference's textured tiles whose local contrast fell below a fifth of the
    reference's, corrected for the light's gain: something uniform and out of focus in front of
    the lens there (a hand, cloth or tape touching the lens is far out of focus; a person a metre
    away is not). Lost: share of those tiles flattened or whose structure term is below
    `tile_min` (showing something else). Tiles mostly outside the aligned view are not judged.
    `light_level` is the mean gray the scene is lit to, when known better than from this frame's
    own mean (the level before a step down, see `analyser`): it sizes `scene_snr` only.
    """
    centred = np.asarray(gray - np.float32(ref.stats.brightness), np.float32)
    mu = blur(centred)
    s2 = np.maximum(blur(centred * centred) - mu * mu, 0.0)
    sxy = blur(centred * ref.centred) - mu * ref.mu
    local = np.sqrt(s2).astype(np.float32)
    contrast = _tile_mean(local, ref.tiles)
    # the stabiliser follows the frame's contrast (the light's gain): sized for the reference
    # alone, it makes a frame with almost no contrast "match" any structure, as
    # (0 + c3) / (0 + c3) = 1. Both scales must show contrast: a smooth gradient (an infrared
    # illuminator's fall-off on a cloth) keeps the global one, sensor noise on a black frame the
    # local one when the scene itself is smooth
    local_gain = float(contrast.mean()) / (float(ref.tile_contrast.mean()) + _EPS)
    global_gain = float(cv2.meanStdDev(gray)[1][0, 0]) / max(ref.stats.std, 1.0)
    c3 = max(ref.c3 * min(1.0, local_gain, global_gain), _C3_FLOOR)
    s_map = (sxy + c3) / (local * ref.sigma + c3)
    weight = ref.weight if valid is None else ref.weight * valid
    weighted = np.asarray(s_map * weight, dtype=np.float32)
    wsum = float(weight.sum()) + _EPS
    similarity = min(max(float(weighted.sum()) / wsum, -1.0), 1.0)
    tile_w = ref.tile_weight if valid is None else _tile_mean(np.asarray(weight, np.float32), ref.tiles)
    tile_s = _tile_mean(weighted, ref.tiles) / (tile_w + _EPS)
    judged = ref.textured
    seen_view = None if valid is None else _tile_mean(valid, ref.tiles) >= _MIN_VALID
    if seen_view is not None:
        judged = judged & seen_view
    n = int(judged.sum())
    energy = _energy(gray, ref.tiles)
    level_gain = (float(gray.mean()) + 2.0) / (ref.stats.brightness + 2.0)
    light_gain = level_gain if light_level is None else (light_level + 2.0) / (ref.stats.brightness + 2.0)
    snr, scene = detail_snr(energy if seen_view is None else energy[seen_view],
                            float(ref.tile_energy.max()), light_gain)
    if n == 0:
        return Structure(similarity, 0.0, 0.0, 1.0, 0, None, snr, scene)
    # the light's contrast gain, read where the scene is plainly still seen (tiles that match);
    # the whole frame would follow a cover over most of the view and hide it
    ratio = contrast / (ref.tile_contrast + _EPS)
    seen = (tile_s >= _SEEN) & judged
    gain = level_gain  # unless enough of the scene is left to read the light from
    if seen.sum() >= max(2, n // 4):
        # light scales contrast and level alike: tiles "seen" with a fraction of the contrast the
        # level says are not the scene but a smooth gradient shaped like it (an infrared
        # illuminator's fall-off on a cloth, along the rim of a round object)
        gain = max(median(ratio[seen]), _GAIN_FLOOR * level_gain)
    flat = (contrast < _FLAT * gain * ref.tile_contrast) & judged
    lost = ((tile_s < tile_min) & judged) | flat
    # fine detail per tile relative to the tile's own contrast, against the reference's: blind to
    # the light's gain, so no estimate of it is needed (a person in front would bias one). A turned
    # focus ring or grease lowers it everywhere, a person in front only where they stand (the upper
    # quartile ignores up to three quarters of the view that something plain stands in front of)
    own = energy / (contrast * contrast + _DETAIL_FLOOR)
    ref_own = ref.tile_energy / (ref.tile_contrast * ref.tile_contrast + _DETAIL_FLOOR)
    detail = (own + 1e-3) / (ref_own + 1e-3)  # a tile without detail in either matches itself
    sharpness = min(max(quantile(detail[judged], _DETAIL_QUANTILE), 0.0), 10.0)
    return Structure(similarity, float(lost.sum()) / n, float(flat.sum()) / n, sharpness, n, lost, snr, scene)


def detail_snr(energy: npt.NDArray[np.float32], ref_max: float, level_gain: float) -> tuple[float, float]:
    """Fine detail of the frame's most detailed tile over its noise floor (tiles' Laplacian energy),
    and what the learnt scene's most detailed tile would give over the same floor at this light.

    The floor is read on the frame itself, at its plainest tenth of tiles: sensor noise is about
    the same everywhere, so there it is all the fine detail there is (Immerkaer's idea of reading
    noise where the picture is smooth, at tile scale). A real scene in focus, even a smooth one
    (a fundus photograph, a clock face), has somewhere detail well above that floor: its edges;
    a cloth in front of the lens has only the noise, everywhere alike, whatever its shading.
    The second value says whether the scene could be told from noise at all: a scene dim by
    nature, or light falling, sinks its detail into the noise (light gain capped at 1: more light
    than learnt never hides detail).
    """
    if energy.size == 0:
        return 1e3, 1e3
    flat = energy.ravel()
    k = int(_NOISE_QUANTILE * (flat.size - 1))
    floor = float(np.partition(flat, k)[k]) + _QUANT_ENERGY
    gain = min(max(level_gain, 0.0), 1.0)
    return (float(min(float(energy.max()) / floor, 1e3)),
            float(min((gain * gain * ref_max + floor) / floor, 1e3)))
