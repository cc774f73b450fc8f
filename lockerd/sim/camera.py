"""Simulated camera: a textured locker-front scene with sensor noise, light drift and tamper modes."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Final

import cv2
import numpy as np

from lockerd.camera.frames import as_u8
from lockerd.drivers.base import Frame, SampleListener

log = logging.getLogger(__name__)

TAMPER_MODES: Final = ("covered", "partial", "black", "saturated", "blurred", "sprayed", "frozen",
                       "turned", "unplugged")
BENIGN_MODES: Final = ("normal", "person", "shadow", "dim", "night", "ir", "shake")
SHAKE_PX: Final = 0.006
"""Largest shift of the `shake` mode, as a share of the width (4 px at 640), with up to 1 degree."""
MODES: Final = BENIGN_MODES + TAMPER_MODES


def locker_scene(width: int, height: int, seed: int) -> Frame:
    """A cabinet front: a grid of doors with seams, handles and numbers, floor and wall texture."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    wall = np.linspace(90, 150, height, dtype=np.float32)[:, None, None]
    img[:] = np.clip(wall + rng.normal(0, 6, (height, width, 1)), 0, 255).astype(np.uint8)
    for _ in range(40):  # wall/floor blotches
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        color = [int(v) for v in rng.integers(40, 200, 3)]
        cv2.circle(img, c, int(rng.integers(4, 30)), color, -1)
    x0, y0 = width // 8, height // 10
    cols, rows = 4, 5
    dw, dh = (width * 3 // 4) // cols, (height * 4 // 5) // rows
    for r in range(rows):
        for col in range(cols):
            p1: tuple[int, int] = (x0 + col * dw, y0 + r * dh)
            p2: tuple[int, int] = (p1[0] + dw - 3, p1[1] + dh - 3)
            shade = int(rng.integers(150, 220))
            cv2.rectangle(img, p1, p2, (shade, shade, shade - 10), -1)
            cv2.rectangle(img, p1, p2, (40, 40, 40), 2)
            cv2.rectangle(img, (p2[0] - dw // 5, p1[1] + dh // 3), (p2[0] - dw // 10, p1[1] + dh // 2),
                          (60, 60, 70), -1)
            cv2.putText(img, str(r * cols + col + 1), (p1[0] + 6, p1[1] + dh // 3),
                        cv2.FONT_HERSHEY_SIMPLEX, max(0.3, dh / 80), (30, 30, 30), 1)
    return img


class SimCamera:
    """A FrameSource producing frames in its own thread, like a real camera driver.

    `set_mode()` switches tamper modes at run time (fault injector, demo). In `frozen` the last
    picture keeps arriving with new timestamps; in `unplugged` nothing arrives (latest() is None).
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0, *,
                 decode_hz: float | None = None, seed: int = 7,
                 noise_sigma: float = 3.0, drift: float = 0.08, drift_period_s: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._decode_period = 0.0 if decode_hz is None else 1.0 / decode_hz
        self._clock = clock
        self._drift, self._period = drift, drift_period_s
        self._rng = np.random.default_rng(seed)
        self._scene = locker_scene(width, height, seed)
        self._other = locker_scene(width, height, seed + 1000)[:, ::-1].copy()
        self._other = as_u8(cv2.rotate(cv2.resize(self._other, (height, width)),
                                       cv2.ROTATE_90_CLOCKWISE))
        noise = self._rng.normal(0, noise_sigma, (height + 16, width + 16, 3))
        self._noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self._mode = "normal"
        self._bases: dict[str, Frame] = {}
        self._lock = threading.Lock()
        self._latest: tuple[float, Frame] | None = None
        self._listener: SampleListener | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.decoded = 0
        self.state = "stopped"

    @property
    def mode(self) -> str:
        """The current mode."""
        return self._mode

    def set_mode(self, mode: str) -> None:
        """Switch scene/tamper mode (any of MODES); takes effect with the next frame."""
        if mode not in MODES:
            raise ValueError(f"unknown camera mode {mode!r}; one of {', '.join(MODES)}")
        log.info("sim camera mode: %s", mode)
        self._mode = mode
        if mode == "unplugged":
            with self._lock:
                self._latest = None

    async def start(self) -> None:
        """Start the frame thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-camera", daemon=True)
        self._thread.start()
        self.state = "streaming"

    async def stop(self) -> None:
        """Stop the frame thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join, 5.0)
        self.state = "stopped"

    def sample_at(self, hz: float) -> None:
        """Render (and hand to the listener) `hz` frames a second from now on."""
        self._decode_period = 1.0 / hz

    def listen(self, listener: SampleListener | None) -> None:
        """Hand each rendered (sampled) frame to `listener(ts, frame)` in the frame thread."""
        self._listener = listener

    def latest(self) -> tuple[float, Frame] | None:
        """(capture time, frame) of the newest frame, None while unplugged."""
        with self._lock:
            return self._latest

    def _run(self) -> None:
        """A frame arrives every 1/fps; like OpenCVCamera with `decode_hz`, only one per decode
        period is rendered (the sim's decode), so the daemon's CPU on the sim is what it would be
        on a camera."""
        period = 1.0 / self.fps
        next_decode = 0.0
        while not self._stop.is_set():
            t0 = time.monotonic()
            mode = self._mode
            if mode == "unplugged":
                self.state = "no_frames"
                next_decode = 0.0
            else:
                self.state = "streaming"
                self.frames += 1
                if t0 >= next_decode:
                    frame = self.render(mode, self._clock())
                    ts = self._clock()
                    with self._lock:
                        self._latest = (ts, frame)
                    self.decoded += 1
                    listener = self._listener
                    if listener is not None:
                        try:
                            listener(ts, frame)
                        except Exception:  # as the real driver: the camera keeps going
                            log.exception("camera frame listener failed")
                    decode_period = self._decode_period
                    next_decode = max(next_decode + decode_period, t0) \
                        if next_decode else t0 + decode_period
            self._stop.wait(max(0.0, period - (time.monotonic() - t0)))

    def render(self, mode: str, now: float) -> Frame:
        """One frame of `mode` at time `now` (frozen repeats the last frame)."""
        if mode == "frozen":
            with self._lock:
                last = self._latest
            if last is not None:
                return last[1]
            mode = "normal"
        base = self._base(mode)
        h, w = self.height, self.width
        if mode == "shake":  # wind or a slammed door: the mounted camera moves a little
            angle = float(self._rng.uniform(-1.0, 1.0))
            shift = self._rng.uniform(-SHAKE_PX, SHAKE_PX, 2) * w
            m = np.asarray(cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), np.float64)
            m[:, 2] += shift
            base = as_u8(cv2.warpAffine(base, m, (w, h), borderMode=cv2.BORDER_REFLECT))
        gain = 1.0 + self._drift * math.sin(2 * math.pi * now / self._period)
        lit = cv2.convertScaleAbs(base, alpha=gain)
        # a random window of a fixed noise bank: fresh-looking noise per frame at no cost
        dy, dx, ey, ex = (int(v) for v in self._rng.integers(0, 16, 4))
        if mode == "ir":  # the camera's infrared mode delivers gray pictures: gray noise too
            gray = cv2.add(lit[:, :, 0], self._noise_pos[dy:dy + h, dx:dx + w, 0])
            gray = cv2.subtract(gray, self._noise_neg[ey:ey + h, ex:ex + w, 0])
            return as_u8(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        out = cv2.add(lit, self._noise_pos[dy:dy + h, dx:dx + w])
        return as_u8(cv2.subtract(out, self._noise_neg[ey:ey + h, ex:ex + w]))

    def _base(self, mode: str) -> Frame:
        if mode in self._bases:
            return self._bases[mode]
        s, h, w = self._scene, self.height, self.width
        if mode in ("normal", "frozen", "unplugged", "shake"):
            img = s
        elif mode == "person":
            img = s.copy()
            cv2.rectangle(img, (w // 3, h // 2), (w // 3 + w // 5, h), (70, 50, 40), -1)
            cv2.ellipse(img, (w // 3 + w // 10, h // 2 - h // 12), (w // 18, h // 10), 0, 0, 360,
                        (120, 140, 170), -1)
        elif mode == "shadow":
            ramp = np.linspace(0.55, 1.0, w, dtype=np.float32)[None, :, None]
            img = np.clip(s * ramp, 0, 255).astype(np.uint8)
        elif mode == "dim":
            img = as_u8(cv2.convertScaleAbs(s, alpha=0.6))
        elif mode == "night":  # a weak lamp: a fifth of the light
            img = as_u8(cv2.convertScaleAbs(s, alpha=0.2))
        elif mode == "ir":  # infrared illuminator: red-weighted gray, brighter in the middle
            b, g, r = (c.astype(np.float32) for c in cv2.split(s))
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            falloff = 1.0 - 0.4 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2.0
            gray = np.clip((0.15 * b + 0.35 * g + 0.5 * r) * falloff, 0, 255).astype(np.uint8)
            img = as_u8(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
        elif mode == "covered":
            ramp = np.linspace(0.9, 1.1, h, dtype=np.float32)[:, None, None]
            img = np.clip(np.full((h, w, 3), (60, 80, 110), np.float32) * ramp, 0, 255).astype(np.uint8)
        elif mode == "partial":  # a hand or cloth over three quarters of the view, from the left
            img = s.copy()
            cut = w * 3 // 4
            ramp = np.linspace(0.9, 1.1, h, dtype=np.float32)[:, None, None]
            cover = np.full((h, cut, 3), (90, 100, 120), np.float32) * ramp
            img[:, :cut] = np.clip(cover, 0, 255).astype(np.uint8)
        elif mode == "black":
            img = np.full((h, w, 3), 4, np.uint8)
        elif mode == "saturated":
            img = as_u8(cv2.convertScaleAbs(s, alpha=0.1, beta=240))
        elif mode == "blurred":
            img = as_u8(cv2.GaussianBlur(s, (0, 0), 8))
        elif mode == "sprayed":
            img = as_u8(cv2.addWeighted(cv2.GaussianBlur(s, (0, 0), 4), 0.2,
                                        np.full_like(s, 200), 0.8, 0))
        elif mode == "turned":
            img = self._other
        else:
            raise ValueError(mode)
        self._bases[mode] = img
        return img
