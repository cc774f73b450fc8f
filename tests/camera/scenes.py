"""Small camera views of the simulated cabinet for the camera tests: poses, light, covers, infrared."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import numpy.typing as npt

from lockerd.sim.camera import locker_scene

Img = npt.NDArray[np.uint8]
W, H = 320, 240          # camera frames of the tests (the guard analyses them at 160x120)
SIZE = (160, 120)
SIDES = ("left", "right", "top", "bottom", "top-left", "bottom-right")


@functools.cache
def world(seed: int = 7) -> npt.NDArray[np.float32]:
    """A cabinet front larger than the view, so a moved camera still sees scene at its edges."""
    return np.asarray(locker_scene(480, 360, seed), np.float32)


def view(seed: int = 7, *, dx: float = 0.0, dy: float = 0.0, angle: float = 0.0) -> npt.NDArray[np.float32]:
    """The camera's W x H view of the world, its centre moved by (dx, dy) pixels of the view and
    turned by `angle` degrees (a camera pose)."""
    scene = world(seed)
    k = 0.75 * scene.shape[1] / W
    a = np.deg2rad(angle)
    c, s = np.cos(a) * k, np.sin(a) * k
    cx, cy = scene.shape[1] / 2 + dx * k, scene.shape[0] / 2 + dy * k
    m = np.array([[c, -s, cx - c * W / 2 + s * H / 2], [s, c, cy - s * W / 2 - c * H / 2]])
    out = cv2.warpAffine(scene, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT)
    return np.asarray(out, np.float32)


def expose(img: npt.NDArray[np.float32], rng: np.random.Generator, *, gain: float = 1.0,
           noise: float = 2.0) -> Img:
    """The sensor: light gain, read noise, 8 bits."""
    out = img * gain + rng.normal(0.0, noise, img.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def cover(img: npt.NDArray[np.float32], share: float, side: str,
          colour: tuple[float, float, float] = (70, 90, 120)) -> npt.NDArray[np.float32]:
    """A hand or cloth (smooth, out of focus) over `share` of the view from a side or corner."""
    mask = np.zeros((H, W), np.uint8)
    if share >= 1.0:
        mask[:] = 1
    elif side in ("left", "right", "top", "bottom"):
        n = round(share * (W if side in ("left", "right") else H))
        region = {"left": mask[:, :n], "right": mask[:, W - n:], "top": mask[:n], "bottom": mask[H - n:]}
        region[side].fill(1)
    else:
        k = np.sqrt(share * 4 / np.pi)
        centre = (0 if "left" in side else W, 0 if "top" in side else H)
        cv2.ellipse(mask, centre, (int(k * W), int(k * H)), 0, 0, 360, 1, -1)
    shade = np.linspace(0.9, 1.1, H, dtype=np.float32)[:, None, None]
    cloth = np.asarray(colour, np.float32) * shade
    return np.where(mask[:, :, None] > 0, cloth, img).astype(np.float32)


def infrared(img: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The camera's infrared mode: red-weighted gray, darker towards the corners."""
    b, g, r = cv2.split(img)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    falloff = 1.0 - 0.3 * (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2) / 2
    gray = (0.1 * b + 0.3 * g + 0.6 * r) * falloff
    return np.asarray(np.repeat(gray[:, :, None], 3, axis=2), np.float32)


def gray_noise(img: npt.NDArray[np.float32], rng: np.random.Generator, noise: float = 2.0) -> Img:
    """Expose an infrared (gray) picture: the same noise in every channel, as such cameras give."""
    n = rng.normal(0.0, noise, img.shape[:2]).astype(np.float32)[:, :, None]
    return np.clip(img + n, 0, 255).astype(np.uint8)


def tape(img: npt.NDArray[np.float32], share: float, side: str,
         colour: tuple[float, float, float] = (200, 190, 170)) -> npt.NDArray[np.float32]:
    """Translucent tape over `share` of the view: the scene behind blurred and veiled 70 %."""
    veiled = cv2.GaussianBlur(img, (0, 0), 3.0) * 0.3 + np.asarray(colour, np.float32) * 0.7
    mask = cover(np.zeros_like(img), share, side, (1.0, 1.0, 1.0)) > 0
    return np.where(mask, veiled, img).astype(np.float32)


def jpeg(img: Img, quality: int) -> Img:
    """A compressing IP camera: JPEG round trip."""
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)


def person(x: float, share: float, seed: int = 11, *,
           swing: float = 0.0) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """A person in front of the camera, centred at column `x`, covering about `share` of the view:
    head, torso and two arms, clothing with a print (another cabinet's front, contrast halved) and
    folds, slightly out of focus. Returns (layer, alpha) to composite over a view: the layer moves
    with the person, so their texture moves coherently."""
    rng = np.random.default_rng(seed)
    print_ = cv2.resize(np.ascontiguousarray(world(seed).mean(axis=2).T), (W, H))  # turned: no scene
    print_ = (print_ - print_.mean()) / (print_.std() + 1e-3)
    folds = cv2.resize(rng.normal(0, 1, (H // 16, W // 16)).astype(np.float32), (W, H),
                       interpolation=cv2.INTER_CUBIC)
    shade = np.clip(1 + 0.25 * print_ + 0.1 * folds, 0.2, 2)
    fabric = np.asarray((60, 110, 150), np.float32) * shade[:, :, None]
    shift = round(x - W / 2)
    layer = np.roll(fabric, shift, axis=1)
    cx, top = round(x), round(H * 0.1)

    def body(u: float, cx: int) -> npt.NDArray[np.uint8]:
        mask = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mask, [np.array([[cx - 2.2 * u, top + 2.6 * u], [cx + 2.2 * u, top + 2.6 * u],
                                      [cx + 2.5 * u, H], [cx - 2.5 * u, H]], np.int32)], 1)
        for side in (-1, 1):
            sx, sy = cx + side * 2.1 * u, top + 3.0 * u
            ex, ey = sx + side * 0.6 * u + np.sin(side * swing) * 5.5 * u, sy + np.cos(swing) * 5.5 * u
            cv2.line(mask, (round(sx), round(sy)), (round(ex), round(ey)), 1, max(1, round(1.1 * u)))
        return mask

    u = 0.05 * H
    for _ in range(4):  # head units giving `share` of a view it stands in the middle of
        u = min(u * share / max(float(body(u, W // 2).mean()), 1e-3), 0.2 * H)
    mask = body(u, cx)
    head = np.zeros((H, W), np.uint8)
    cv2.ellipse(head, (cx, round(top + 1.1 * u)), (max(1, round(0.85 * u)), max(1, round(1.1 * u))),
                0, 0, 360, 1, -1)
    face = np.asarray((90, 130, 190), np.float32) * (1 + 0.15 * np.roll(print_, shift, axis=1))[:, :, None]
    layer = np.where(head[:, :, None] > 0, face, layer)
    alpha = cv2.GaussianBlur(np.maximum(mask, head).astype(np.float32), (0, 0), 1.0)
    return np.asarray(cv2.GaussianBlur(layer, (0, 0), 1.0), np.float32), alpha


def composite(img: npt.NDArray[np.float32], layer: npt.NDArray[np.float32],
              alpha: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """`layer` over `img` with `alpha` (0..1 per pixel)."""
    a = alpha[:, :, None]
    return np.asarray(img * (1 - a) + layer * a, np.float32)
