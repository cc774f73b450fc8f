"""Frame preparation and reference-free statistics: what every check reads from one camera frame."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Gray = npt.NDArray[np.float32]

# The colour measure reads an 80x60 nearest-neighbour sample of the frame: plenty for a mean, at a
# fraction of a full-frame colour conversion's cost.
_CHROMA_SAMPLE = (80, 60)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One frame as the analysis sees it: small float grayscale plus how colourful it was.

    `chroma` is the mean channel spread (0..255) of the original colour frame; infrared night
    mode delivers gray pictures (spread near 0). None when the source gives no colour at all.
    """

    gray: Gray
    chroma: float | None


@dataclass(frozen=True, slots=True)
class FrameStats:
    """Reference-free statistics of one analysis frame (grayscale, 0-255)."""

    brightness: float   # mean gray level
    std: float          # global contrast
    entropy: float      # bits of the gray-level histogram, 0..8
    saturated: float    # fraction of pixels at >= 250
    sharpness: float    # Laplacian variance over intensity variance: scale-free edge energy
    edge_density: float  # fraction of pixels with a strong Laplacian response


def as_u8(img: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """The same array typed as uint8 (no copy when it already is)."""
    return np.asarray(img, dtype=np.uint8)


def _chroma(frame: npt.NDArray[Any]) -> float:
    sample = cv2.resize(frame, _CHROMA_SAMPLE, interpolation=cv2.INTER_NEAREST)
    b, g, r = cv2.split(sample)[:3]
    spread = cv2.add(cv2.absdiff(b, g), cv2.absdiff(g, r), dtype=cv2.CV_16U)
    return float(cv2.mean(spread)[0]) / 2.0


def prepare_frame(frame: npt.NDArray[Any], size: tuple[int, int]) -> Prepared:
    """BGR/BGRA/gray uint8 frame -> small float32 grayscale (width, height = size) and its colour."""
    chroma: float | None = None
    if frame.ndim == 3 and frame.shape[2] == 3:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        chroma = _chroma(frame)
    elif frame.ndim == 3 and frame.shape[2] == 4:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
        chroma = _chroma(frame)
    elif frame.ndim == 3:
        gray = np.ascontiguousarray(frame[:, :, 0])
    elif frame.ndim == 2:
        gray = frame
    else:
        raise ValueError(f"not an image: shape {frame.shape}")
    return Prepared(shrink(gray, size).astype(np.float32), chroma)


def shrink(gray: npt.NDArray[Any], size: tuple[int, int]) -> npt.NDArray[Any]:
    """`gray` resized to `size` (width, height): halved while it is at least twice as large, then
    area-averaged (or, when smaller, interpolated) to the exact size.

    Each halving is OpenCV's bilinear resize at scale 1/2, which samples between the pixels of
    every 2x2 block and so returns their mean, as an area resize does, within one gray level of
    rounding; OpenCV's area resize of a 640x480 frame to 160x120 costs about 230 µs here, two
    halvings about 30 µs.
    """
    width, height = size
    while gray.shape[1] >= 2 * width and gray.shape[0] >= 2 * height:
        gray = np.asarray(cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2),
                                     interpolation=cv2.INTER_LINEAR))
    if (gray.shape[1], gray.shape[0]) == (width, height):
        return gray
    interp = cv2.INTER_AREA if gray.shape[1] >= width else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, size, interpolation=interp))


def prepare(frame: npt.NDArray[Any], size: tuple[int, int]) -> Gray:
    """BGR/BGRA/gray uint8 frame -> small float32 grayscale (width, height = size)."""
    return prepare_frame(frame, size).gray


def blur(img: Gray) -> Gray:
    """The local window of every per-pixel statistic: 7x7 Gaussian, sigma 1.5 (as SSIM uses)."""
    return np.asarray(cv2.GaussianBlur(img, (7, 7), 1.5), dtype=np.float32)


def frame_stats(gray: Gray) -> FrameStats:
    """Reference-free statistics of an analysis frame."""
    mean_m, std_m = cv2.meanStdDev(gray)
    mean, std = float(mean_m[0, 0]), float(std_m[0, 0])
    # counted on bytes: calcHist on float32 costs four times as much, and truncating a gray level
    # in 0..255 (a mean of frames need not be whole) picks the bin the float histogram would
    hist = cv2.calcHist([gray.astype(np.uint8)], [0], None, [256], [0, 256]).ravel()
    p = hist[hist > 0] / gray.size
    entropy = float(-(p * np.log2(p)).sum())
    saturated = float(hist[250:].sum()) / gray.size
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    lap_var = float(cv2.meanStdDev(lap)[1][0, 0]) ** 2
    sharpness = min(lap_var / (std * std + 1.0), 1e3)
    # relative to the frame's own contrast (a floor of 2 only against quantisation): the same scene
    # in less light must not lose its "edges"
    edge_density = float(np.count_nonzero(np.abs(lap) > max(2.0 * std, 2.0))) / gray.size
    return FrameStats(mean, std, max(0.0, entropy), saturated, sharpness, edge_density)
