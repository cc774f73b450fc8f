"""Bounded registration of a frame to the reference: small shifts and rotations of a mounted camera.

Wind, a slammed door or a passing truck move a mounted camera by a few pixels and a degree or two;
compared pixel for pixel, such a frame looks "redirected". So each frame is first aligned to the
reference: phase correlation (whitened cross-power spectrum, blind to the light level) finds the
translation on a half-size image, and at most `ITERATIONS` Gauss-Newton steps on a similarity warp,
with gain and offset normalised away as ECC does, add rotation and scale. The result is used only
inside the configured bounds; a camera turned further is compared unaligned and fails, so the
bounds, not the estimator, decide how far a camera may move before it counts as turned.

Cost per frame at 160x120 analysis size: a 2x area downscale and a small blur, one phase
correlation of 80x60, at most `ITERATIONS` steps (each one 80x60 warp and a 4 x 4800 product)
and, in the analysis, two 160x120 warps: about 0.3-0.5 ms on one core of this machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from lockerd.camera.frames import Gray

ITERATIONS = 8
"""Upper bound of Gauss-Newton iterations per frame: the cost stays bounded when it does not settle."""
_SETTLED = 0.01   # stop when an update moves the picture's corner by less than this (half-size px)
_BORDER = 3       # pixels along the edges left out of the fit (resampling and window effects)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How far the camera may move and still be compared aligned (from the [camera] config)."""

    max_shift: float = 0.05        # translation of the picture's centre, fraction of its width
    max_rotation_deg: float = 4.0
    max_scale: float = 0.05        # |scale - 1|


@dataclass(frozen=True, slots=True)
class Motion:
    """Where the frame's content sits relative to the reference, in analysis pixels and degrees."""

    dx: float          # displacement of the picture's centre
    dy: float
    rotation_deg: float
    scale: float
    response: float    # phase-correlation peak, 0..1: how clearly one translation explains the frame
    within: bool       # inside the bounds: the frame is compared aligned
    matrix: npt.NDArray[np.float32]  # 2x3, reference pixel -> frame pixel (analysis size)

    @property
    def shift(self) -> float:
        """Length of the centre's displacement in analysis pixels."""
        return math.hypot(self.dx, self.dy)

    @property
    def negligible(self) -> bool:
        """Too small to be worth resampling the frame for (resampling blurs a little)."""
        corner = abs(math.radians(self.rotation_deg)) + abs(self.scale - 1.0)
        return self.shift < 0.1 and corner * 100.0 < 0.1  # < 0.1 px at 100 px from the centre


IDENTITY = Motion(0.0, 0.0, 0.0, 1.0, 0.0, True, np.eye(2, 3, dtype=np.float32))


@dataclass(frozen=True, slots=True)
class RegistrationRef:
    """What registration needs from the reference, computed once per reference.

    The fit is an inverse-compositional Gauss-Newton (Baker & Matthews 2004) on a similarity
    warp with the frame's gain and offset normalised away (as ECC does): the reference's
    steepest-descent images and Hessian are computed here once, so an iteration costs one small
    warp, one mean/deviation and one 4 x pixels product.
    """

    small: Gray                           # the reference at half size, smoothed
    window: npt.NDArray[np.float32]       # Hann window of that size (phase correlation edges)
    windowed: Gray                        # small * window
    descent_t: npt.NDArray[np.float32]    # (4, pixels) steepest-descent images, zero on the border
    descent_sum: npt.NDArray[np.float64]  # their sums (the frame's mean is taken out through them)
    template_term: npt.NDArray[np.float64]  # descent_t @ normalised reference
    hessian_inv: npt.NDArray[np.float64]  # 4x4, or zeros for a flat reference
    centre: tuple[float, float]


def half(gray: Gray) -> Gray:
    """2x area downscale (noise halves, registration cost quarters)."""
    h, w = gray.shape[:2]
    return np.asarray(cv2.resize(gray, (max(16, w // 2), max(16, h // 2)),
                                 interpolation=cv2.INTER_AREA), dtype=np.float32)


def _smooth(img: Gray) -> Gray:
    return np.asarray(cv2.GaussianBlur(img, (5, 5), 1.0), dtype=np.float32)


def registration_ref(gray: Gray) -> RegistrationRef:
    """Precompute the reference side of registration."""
    small = _smooth(half(gray))
    h, w = small.shape
    window = np.asarray(cv2.createHanningWindow((w, h), cv2.CV_32F), dtype=np.float32)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    mean_m, std_m = cv2.meanStdDev(small)
    mean, scale = float(mean_m[0, 0]), float(std_m[0, 0]) + 1e-3
    inner = np.zeros((h, w), np.float32)
    inner[_BORDER:h - _BORDER, _BORDER:w - _BORDER] = 1.0
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3) * inner / (8 * scale)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3) * inner / (8 * scale)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xc, yc = xs - cx, ys - cy
    # similarity warp x' = x + [[a, -b], [b, a]] (x - c) + t, parameters (a, b, tx, ty)
    descent = np.stack([gx * xc + gy * yc, -gx * yc + gy * xc, gx, gy]).reshape(4, -1)
    descent = np.ascontiguousarray(descent, dtype=np.float32)
    hessian = descent.astype(np.float64) @ descent.T.astype(np.float64)
    hessian_inv: npt.NDArray[np.float64] = np.zeros((4, 4))
    if np.all(np.isfinite(hessian)) and np.linalg.cond(hessian) < 1e8:
        hessian_inv = np.asarray(np.linalg.inv(hessian), dtype=np.float64)
    template = ((small - mean) / scale).ravel()
    return RegistrationRef(small, window, np.asarray(small * window, dtype=np.float32), descent,
                           descent.sum(axis=1, dtype=np.float64),
                           (descent @ template).astype(np.float64), hessian_inv, (cx, cy))


def _inverse_step(dp: npt.NDArray[np.float64], centre: tuple[float, float]) -> npt.NDArray[np.float64]:
    """The inverse of the small similarity step `dp` as a 3x3 matrix (closed form)."""
    a, b, tx, ty = (float(v) for v in dp)
    cx, cy = centre
    c, s = 1.0 + a, b
    det = c * c + s * s
    # step: x' = [[c, -s], [s, c]] x + t', t' = t - (A - I) centre
    t0, t1 = tx - a * cx + b * cy, ty - b * cx - a * cy
    ic, is_ = c / det, s / det
    return np.array([[ic, is_, -(ic * t0 + is_ * t1)],
                     [-is_, ic, -(-is_ * t0 + ic * t1)],
                     [0.0, 0.0, 1.0]])


def _refine(ref: RegistrationRef, small: Gray, warp: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Gauss-Newton iterations from `warp` (3x3, reference -> frame, half-size pixels)."""
    if not ref.hessian_inv.any():
        return warp
    h, w = small.shape
    corner = math.hypot(w, h) / 2.0
    for _ in range(ITERATIONS):
        warped = cv2.warpAffine(small, warp[:2].astype(np.float32), (w, h),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REPLICATE)
        mean_m, std_m = cv2.meanStdDev(warped)
        mean, std = float(mean_m[0, 0]), float(std_m[0, 0]) + 1e-3
        # descent . ((warped - mean) / std - template), without forming the error image
        rhs = (ref.descent_t @ warped.reshape(-1) - mean * ref.descent_sum) / std - ref.template_term
        dp = ref.hessian_inv @ rhs
        if not np.all(np.isfinite(dp)):
            break
        warp = warp @ _inverse_step(dp, ref.centre)
        if math.hypot(dp[0], dp[1]) * corner + math.hypot(dp[2], dp[3]) < _SETTLED:
            break
    return warp


def register(ref: RegistrationRef, gray: Gray, bounds: Bounds) -> Motion:
    """The bounded motion of `gray` relative to the reference (phase correlation, then refined)."""
    small = _smooth(half(gray))
    if small.shape != ref.small.shape:
        return IDENTITY
    h, w = gray.shape[:2]
    # the window is applied here, not passed: OpenCV 5's phaseCorrelate windows its inputs in place
    (sx, sy), response = cv2.phaseCorrelate(ref.windowed, small * ref.window)
    limit = bounds.max_shift * w
    warp = np.array([[1.0, 0.0, sx], [0.0, 1.0, sy], [0.0, 0.0, 1.0]])
    if math.hypot(sx, sy) <= limit:  # twice the bound in analysis pixels: worth refining
        warp = _refine(ref, small, warp)
    lin = warp[:2, :2]
    scale = math.hypot(float(lin[0, 0]), float(lin[1, 0]))
    rotation = math.degrees(math.atan2(float(lin[1, 0]), float(lin[0, 0])))
    # half-size map -> analysis-size map (pixel centres: x_full = 2 x_half + 0.5)
    full = warp[:2].copy()
    full[:, 2] = 2.0 * warp[:2, 2] + 0.5 * (1.0 - lin.sum(axis=1))
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    dx, dy = (full[:, :2] @ centre + full[:, 2] - centre).tolist()
    within = (math.hypot(dx, dy) <= limit and abs(rotation) <= bounds.max_rotation_deg
              and abs(scale - 1.0) <= bounds.max_scale)
    return Motion(float(dx), float(dy), rotation, scale, min(max(float(response), 0.0), 1.0), within,
                  full.astype(np.float32))


def align(gray: Gray, motion: Motion) -> Gray:
    """The frame resampled into the reference's geometry (edges repeated where nothing was seen)."""
    if motion is IDENTITY:
        return gray
    h, w = gray.shape[:2]
    out = cv2.warpAffine(gray, motion.matrix, (w, h),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32)
