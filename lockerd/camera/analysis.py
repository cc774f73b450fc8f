"""Pure frame analysis for the camera guard: scores of one frame against a reference, and a verdict."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.float32]

# Stabiliser of the SSIM structure term ((0.03*255)^2 / 2, as in Wang et al. 2004): flat patches
# in both images count as "the same structure" instead of dividing noise by noise.
_C3 = (0.03 * 255.0) ** 2 / 2.0
_EPS = 1e-6


class Verdict(StrEnum):
    """What one sample says about the camera; everything but OK closes the intake gate."""

    OK = "ok"
    LEARNING = "learning"    # no reference of the empty scene yet: fail closed
    DOWN = "down"            # no frame (unplugged, not running)
    FROZEN = "frozen"        # frames arrive but the picture does not change at all
    BLINDED = "blinded"      # saturated (torch, laser, overexposure)
    DARK = "dark"            # lens covered with something opaque or lights out
    COVERED = "covered"      # uniform picture: cloth, tape, hand close to the lens
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

    dark_brightness: float = 28.0
    covered_std: float = 7.0
    covered_entropy: float = 3.0
    saturated_fraction: float = 0.45
    blinded_brightness: float = 235.0
    sharpness_ratio_min: float = 0.25
    edge_ratio_min: float = 0.25
    contrast_ratio_min: float = 0.45
    similarity_min: float = 0.50
    covered_lost: float = 0.50
    frozen_diff: float = 0.05


@dataclass(frozen=True, slots=True)
class FrameStats:
    """Reference-free statistics of one analysis frame (grayscale, 0-255)."""

    brightness: float   # mean gray level
    std: float          # global contrast
    entropy: float      # bits of the gray-level histogram, 0..8
    saturated: float    # fraction of pixels at >= 250
    sharpness: float    # Laplacian variance over intensity variance: scale-free edge energy
    edge_density: float  # fraction of pixels with a strong Laplacian response


@dataclass(frozen=True, slots=True)
class Scores:
    """Everything the verdict is decided from; all values bounded (see `bounds`)."""

    brightness: float
    std: float
    entropy: float
    saturated: float
    sharpness_ratio: float  # vs reference, 0..10
    edge_ratio: float       # vs reference, 0..10
    contrast_ratio: float   # coefficient of variation vs reference, 0..10
    similarity: float       # texture-weighted SSIM structure term vs reference, -1..1
    lost: float             # share of the reference's texture flattened (partly covered), 0..1
    change: float           # mean absolute difference to the previous sample, 0..255 (-1: none)

    def as_dict(self) -> dict[str, float]:
        """Rounded, JSON-able."""
        return {name: round(float(getattr(self, name)), 4) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Reference:
    """The learnt empty scene: its analysis image and precomputed local statistics."""

    gray: Gray
    mu: Gray
    sigma2: Gray
    weight: Gray
    stats: FrameStats


def as_u8(img: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The same array typed as uint8 (no copy when it already is)."""
    return np.asarray(img, dtype=np.uint8)


def prepare(frame: npt.NDArray[Any], size: tuple[int, int]) -> Gray:
    """BGR/BGRA/gray uint8 frame -> small float32 grayscale (width, height = size)."""
    if frame.ndim == 3 and frame.shape[2] == 3:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    elif frame.ndim == 3:
        gray = np.ascontiguousarray(frame[:, :, 0])
    elif frame.ndim == 2:
        gray = frame
    else:
        raise ValueError(f"not an image: shape {frame.shape}")
    interp = cv2.INTER_AREA if gray.shape[1] >= size[0] else cv2.INTER_LINEAR
    small = cv2.resize(gray, size, interpolation=interp)
    return small.astype(np.float32)


def _blur(img: Gray) -> Gray:
    return np.asarray(cv2.GaussianBlur(img, (7, 7), 1.5), dtype=np.float32)


def frame_stats(gray: Gray) -> FrameStats:
    """Reference-free statistics of an analysis frame."""
    mean = float(gray.mean())
    std = float(gray.std())
    hist = np.bincount(np.clip(gray, 0, 255).astype(np.uint8).ravel(), minlength=256)
    p = hist[hist > 0] / gray.size
    entropy = float(-(p * np.log2(p)).sum())
    saturated = float((gray >= 250).mean())
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    lap_var = float(lap.var())
    sharpness = min(lap_var / (std * std + 1.0), 1e3)
    edge_density = float((np.abs(lap) > max(2.0 * std, 8.0)).mean())
    return FrameStats(mean, std, max(0.0, entropy), saturated, sharpness, edge_density)


def make_reference(gray: Gray) -> Reference:
    """Precompute what each comparison with the reference needs."""
    mu = _blur(gray)
    sigma2 = np.maximum(_blur(gray * gray) - mu * mu, 0.0).astype(np.float32)
    weight = (np.sqrt(sigma2) + 2.0).astype(np.float32)
    return Reference(gray.copy(), mu, sigma2, weight, frame_stats(gray))


def blend_reference(ref: Reference, gray: Gray, alpha: float) -> Reference:
    """Move the reference a step `alpha` (0..1) towards the current frame (daylight drift)."""
    a = float(np.clip(alpha, 0.0, 1.0))
    mixed = cv2.addWeighted(ref.gray, 1.0 - a, gray, a, 0.0)
    return make_reference(np.asarray(mixed, dtype=np.float32))


def similarity(ref: Reference, gray: Gray) -> tuple[float, float]:
    """(structure similarity, lost fraction) of a frame against the reference.

    Similarity: texture-weighted mean of the SSIM structure term, blind to light gain and offset.
    Lost: texture-weighted share of the reference's textured area where the local contrast fell
    below 1/5 of the reference's (something flat in front of the lens there); a light change
    scales contrast evenly and stays far below that until the picture is dark anyway.
    """
    mu = _blur(gray)
    s2 = np.maximum(_blur(gray * gray) - mu * mu, 0.0)
    sxy = _blur(gray * ref.gray) - mu * ref.mu
    s_map = (sxy + _C3) / (np.sqrt(s2 * ref.sigma2) + _C3)
    wsum = float(ref.weight.sum()) + _EPS
    value = float((s_map * ref.weight).sum()) / wsum
    lost_mask = (s2 * 25.0 < ref.sigma2) & (ref.sigma2 > 16.0)
    lost = float((ref.weight * lost_mask).sum()) / wsum
    return float(np.clip(value, -1.0, 1.0)), float(np.clip(lost, 0.0, 1.0))


def _ratio(value: float, ref: float) -> float:
    return float(np.clip(value / (ref + _EPS), 0.0, 10.0))


def score(ref: Reference, gray: Gray, previous: Gray | None) -> Scores:
    """All scores of an analysis frame against the reference (and the previous sample)."""
    st = frame_stats(gray)
    rs = ref.stats
    cv_now = st.std / (st.brightness + 10.0)
    cv_ref = rs.std / (rs.brightness + 10.0)
    change = -1.0
    if previous is not None and previous.shape == gray.shape:
        change = float(np.abs(gray - previous).mean())
    sim, lost = similarity(ref, gray)
    return Scores(
        brightness=st.brightness,
        std=st.std,
        entropy=st.entropy,
        saturated=st.saturated,
        sharpness_ratio=_ratio(st.sharpness, rs.sharpness),
        edge_ratio=_ratio(st.edge_density, rs.edge_density),
        contrast_ratio=_ratio(cv_now, cv_ref),
        similarity=sim,
        lost=lost,
        change=change,
    )


def classify_absolute(st: FrameStats, t: Thresholds) -> Verdict:
    """The checks that need no reference: blinded, dark, covered (also used while learning)."""
    if st.saturated >= t.saturated_fraction or st.brightness >= t.blinded_brightness:
        return Verdict.BLINDED
    if st.brightness <= t.dark_brightness:
        return Verdict.DARK
    if st.std <= t.covered_std or st.entropy <= t.covered_entropy:
        return Verdict.COVERED
    return Verdict.OK


def classify(s: Scores, t: Thresholds) -> Verdict:
    """The verdict of one frame, ignoring time (frozen needs time: see `is_still`)."""
    absolute = classify_absolute(
        FrameStats(s.brightness, s.std, s.entropy, s.saturated, 0.0, 0.0), t)
    if absolute is not Verdict.OK:
        return absolute
    if s.lost >= t.covered_lost:
        return Verdict.COVERED
    if s.sharpness_ratio <= t.sharpness_ratio_min or s.edge_ratio <= t.edge_ratio_min:
        return Verdict.DEFOCUSED
    if s.contrast_ratio <= t.contrast_ratio_min:
        return Verdict.SPRAYED
    if s.similarity <= t.similarity_min:
        return Verdict.REDIRECTED
    return Verdict.OK


def is_still(s: Scores, t: Thresholds) -> bool:
    """True when this sample is (near-)identical to the previous one: sensor noise is missing."""
    return 0.0 <= s.change <= t.frozen_diff
