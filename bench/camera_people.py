"""Camera-guard bench helper: people who walk and stand in front of the camera, built from photographs.

A person close to the cabinet's camera is the benign change that looks most like a cover: large,
nearer than the scene, a little out of focus. What tells them apart in reality is what this
module models: a person has edges and texture (clothing folds, prints and weaves, a face, hair, a
silhouette with arms) and moves between samples, while a cloth or hand over the lens is smooth and
static relative to the lens. Clothing is a crop of another bundled photograph (a print, a pattern)
over a fabric colour with folds; the print's contrast is drawn from plain (10 %) to strong (60 %),
so plain coats are in the set too. Faces are scikit-image's bundled LFW subset (200 small gray
faces), tinted to a skin tone. The figure (head, neck, torso, two swinging arms) is scaled to cover
a target share of the view and moves coherently over a sequence: standing and swaying, shuffling,
or walking across, bouncing off the view's sides.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import numpy.typing as npt

Img = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
SKIN = ((60, 90, 150), (80, 120, 190), (110, 150, 215), (40, 60, 100), (95, 135, 200))  # BGR
SPEEDS = (0.0, 0.0, 6.0, 15.0, 30.0, 45.0)  # px per sample at 640x480 (5 Hz): stand .. walk
EXTRA_PRINTS = ("logo", "colorwheel")  # bundled images that are no scene of the bench: prints


@functools.cache
def faces() -> F32:
    """scikit-image's bundled LFW faces (200 x 25 x 25, 0..1)."""
    from skimage import data

    return np.asarray(data.lfw_subset(), np.float32)


def extra_prints() -> list[Img]:
    """Bundled images that are no bench scene, as BGR (prints on clothing)."""
    from skimage import data

    out = []
    for name in EXTRA_PRINTS:
        img = np.asarray(getattr(data, name)(), np.uint8)[:, :, :3]
        out.append(np.asarray(cv2.cvtColor(img, cv2.COLOR_RGB2BGR), np.uint8))
    return out


def _crop(rng: np.random.Generator, img: Img, size: tuple[int, int]) -> F32:
    """A random crop of half the image's shorter side, enlarged 1-2.5 times (a print is seen at
    about its own scale), mirrored to fill `size` (w, h); gray, zero mean and unit contrast."""
    h, w = img.shape[:2]
    side = max(8, min(h, w) // 2)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = img[y:y + side, x:x + side]
    gray = patch if patch.ndim == 2 else cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    n = max(8, round(side * float(rng.uniform(1.0, 2.5))))
    g = np.asarray(cv2.resize(gray.astype(np.float32), (n, n), interpolation=cv2.INTER_LINEAR), np.float32)
    reps = (size[1] // n + 2, size[0] // n + 2)
    tiled = np.block([[g if (r + c) % 2 == 0 else g[:, ::-1] for c in range(reps[1])]
                      for r in range(reps[0])])
    out = tiled[:size[1], :size[0]]
    return np.asarray((out - out.mean()) / (out.std() + 1e-3), np.float32)


class Walker:
    """One person over a sequence of `w` x `h` frames, covering about `area` of the view."""

    def __init__(self, rng: np.random.Generator, area: float, wardrobe: list[Img], w: int = 640,
                 h: int = 480) -> None:
        self.w, self.h, self.rng = w, h, rng
        tw = 2 * w  # texture in the person's own coordinates, centre at column w
        fabric = rng.uniform(25, 220, 3).astype(np.float32)
        pattern = _crop(rng, wardrobe[int(rng.integers(len(wardrobe)))], (tw, h))
        amp = float(rng.uniform(0.1, 0.6))
        folds = cv2.GaussianBlur(rng.normal(0, 1, (h // 16, tw // 16)).astype(np.float32), (0, 0), 1.2)
        folds = cv2.resize(folds / (folds.std() + 1e-3), (tw, h), interpolation=cv2.INTER_CUBIC)
        shade = np.clip(1.0 + amp * np.clip(pattern, -2.5, 2.5) * 0.4 + 0.12 * folds, 0.2, 2.0)
        self.tex = np.asarray(fabric * shade[:, :, None], np.float32)
        self.skin = np.asarray(SKIN[int(rng.integers(len(SKIN)))], np.float32) * float(rng.uniform(0.8, 1.1))
        self.hair = rng.uniform(15, 90, 3).astype(np.float32)
        self.face = faces()[int(rng.integers(len(faces())))]
        self.top = float(rng.uniform(0.3 - area, 0.55 - area)) * h  # top of the head: nearer when larger
        self.defocus = float(rng.uniform(0.8, 2.0))            # nearer than the focused scene
        self.x = float(rng.uniform(0.15, 0.85)) * w
        self.v = float(rng.choice(SPEEDS)) * (1 if rng.random() < 0.5 else -1)
        self.phase = float(rng.uniform(0, 2 * np.pi))
        self.u = 0.05 * h
        for _ in range(4):  # head units so the silhouette covers `area` (area grows about with u)
            self.u *= area / max(float(self._mask(w / 2, 0.0, 0.0).mean()), 1e-3)
        self._dress_head()

    def _geometry(self, cx: float) -> tuple[tuple[int, int], tuple[int, int], npt.NDArray[np.int32]]:
        u, top, h = self.u, self.top, self.h
        head = (round(cx), round(top + 1.1 * u))
        axes = (max(1, round(0.85 * u)), max(1, round(1.1 * u)))
        sy = top + 2.6 * u
        torso = np.array([[cx - 2.2 * u, sy], [cx + 2.2 * u, sy], [cx + 2.5 * u, h + 2],
                          [cx - 2.5 * u, h + 2]], np.int32)
        return head, axes, torso

    def _mask(self, cx: float, swing: float, bob: float) -> npt.NDArray[np.float32]:
        """The silhouette: head, neck, torso and two arms swinging by `swing` radians."""
        mask = np.zeros((self.h, self.w), np.uint8)
        u, top = self.u, self.top + bob
        (hx, hy), axes, torso = self._geometry(cx)
        torso[:, 1] += round(bob)
        cv2.ellipse(mask, (hx, hy + round(bob)), axes, 0, 0, 360, 1, -1)
        cv2.rectangle(mask, (round(cx - 0.45 * u), round(top + 1.8 * u)),
                      (round(cx + 0.45 * u), round(top + 2.8 * u)), 1, -1)
        cv2.fillPoly(mask, [torso], 1)
        for side, s in ((-1, swing), (1, -swing)):
            sx, sy = cx + side * 2.1 * u, top + 3.0 * u
            ex = sx + side * 0.6 * u + np.sin(s) * 5.5 * u
            ey = sy + np.cos(s) * 5.5 * u
            cv2.line(mask, (round(sx), round(sy)), (round(ex), round(ey)), 1, max(1, round(1.1 * u)))
        return mask.astype(np.float32)

    def _dress_head(self) -> None:
        """Paint face and hair into the texture at the head's place (person coordinates)."""
        (hx, hy), (ax, ay), _ = self._geometry(float(self.w))
        x0, y0 = hx - ax, hy - ay
        fw, fh = 2 * ax, 2 * ay
        face = cv2.resize(self.face, (fw, fh), interpolation=cv2.INTER_CUBIC)
        lit = np.clip(0.55 + 0.9 * face, 0.2, 1.6)[:, :, None] * self.skin
        hair_rows = max(1, fh // 4)
        lit[:hair_rows] = self.hair * np.clip(1.0 + 0.3 * face[:hair_rows, :, None], 0.5, 1.5)
        ys, xs = slice(max(0, y0), min(self.h, y0 + fh)), slice(x0, x0 + fw)
        if ys.stop > ys.start:
            self.tex[ys, xs] = lit[ys.start - y0:ys.stop - y0]

    def frame(self, img: F32, i: int) -> F32:
        """Frame `i` of the sequence: the person composited over `img` (float BGR, w x h)."""
        x = self.x + self.v * i
        span = 2 * self.w  # bounce off the view's sides, the centre staying inside the view
        x = abs((x % span + span) % span)
        x = span - x if x > self.w else x
        sway = 4.0 * np.sin(self.phase + 0.9 * i)
        cx = float(np.clip(x + sway, 0, self.w))
        swing = (0.35 if self.v else 0.12) * np.sin(self.phase + 1.3 * i)
        bob = 3.0 * np.sin(self.phase + 2.1 * i) if self.v else 1.0 * np.sin(self.phase + 0.7 * i)
        mask = self._mask(cx, float(swing), float(bob))
        shift = round(cx)
        layer = self.tex[:, self.w - shift:2 * self.w - shift]
        if bob:
            layer = np.roll(layer, round(bob), axis=0)
        # out of focus, plus motion blur along the walk (1/50 s exposure at 5 Hz sampling)
        sigma = self.defocus
        layer = np.asarray(cv2.GaussianBlur(layer, (0, 0), sigma), np.float32)
        alpha = np.asarray(cv2.GaussianBlur(mask, (0, 0), sigma), np.float32)
        smear = abs(self.v) * 0.1
        if smear >= 1:
            k = np.zeros((1, int(np.ceil(smear)) | 1), np.float32)
            k[:] = 1.0 / k.size
            layer = np.asarray(cv2.filter2D(layer, -1, k), np.float32)
            alpha = np.asarray(cv2.filter2D(alpha, -1, k), np.float32)
        a = alpha[:, :, None]
        return np.asarray(img * (1 - a) + layer * a, np.float32)


def cover_layout(run_seed: int) -> np.random.Generator:
    """The random source of one tamper run's layout (side, colour, shading, droplets): the same for
    every frame of the run, because a cover stays where it was put, relative to the lens."""
    return np.random.default_rng(run_seed)
