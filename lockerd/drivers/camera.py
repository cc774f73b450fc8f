"""OpenCV camera driver: a FrameSource reading V4L2, a video file or RTSP in its own thread.

Decoding is most of a camera's CPU (issue 19: ~70 % of the guard's idle cost), and the guard
analyses only `sample_hz` frames a second of the 15 the camera sends. So the thread `grab()`s
every frame (which drains the device queue and keeps the stream live) and `retrieve()`s
(decodes) only one per `1/decode_hz`: the newest decoded frame is what the guard analyses and
what an evidence snapshot keeps, so it is never older than one decode period.

A V4L2 camera sending MJPEG hands over compressed frames: `grab()` only dequeues a buffer and
`retrieve()` decodes. OpenCV's FFmpeg backend instead decodes inside `grab()`, so a recorded
MJPEG file (the field recordings, the idle benchmark) paid for every frame. An MJPEG file is
therefore read as raw packets (`CAP_PROP_FORMAT = -1`) and the sampled ones decoded with
`cv2.imdecode`: the file source costs what a V4L2 MJPEG camera costs (`raw_packets`). A V4L2
camera sending MJPEG is asked for its buffers unconverted (`CAP_PROP_CONVERT_RGB = 0`) for the
same reason; should a backend still hand over pixels, they are used as they come.

A compressed frame is decoded twice at most, and small first: the guard analyses a 160x120
picture, and libjpeg decodes straight to a half, quarter or eighth of the size (DCT scaling,
`IMREAD_REDUCED_COLOR_*`) for a fraction of a full decode. The sampled frame goes to the
`listen()`er at that size, in this thread (the guard judges it here: no hand-off to the event
loop per frame); the full-size picture is decoded from the kept packet only when `latest()` is
asked for it (an evidence snapshot). The camera is asked for `decode_hz` frames a second
(`CAP_PROP_FPS`; one that cannot go so low keeps its own rate and the rest are grabbed and
dropped), and a file replays as such a camera would: one wake-up per sampled frame, the packets
in between only demuxed.

OpenCV's own logging (`[ WARN:0@0.03] global cap_v4l.cpp:914 open VIDEOIO(V4L2:/dev/video0):
can't open camera by index`, on every retry, straight to stderr past the journal's priorities
and the redaction) is silenced when this module loads: the driver says why it has no frames
through logging, once per outage, and once when frames come back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from lockerd.drivers.base import Frame, SampleListener

log = logging.getLogger(__name__)

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def parse_source(source: str) -> int | str:
    """'0' -> V4L2 index 0; anything else (device path, file, rtsp:// URL) as given."""
    return int(source) if source.isdigit() else source


def _redact(source: int | str) -> str:
    """An RTSP URL may carry user:password; never log it."""
    text = str(source)
    if "://" in text and "@" in text:
        scheme, rest = text.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text


def _why_not_open(source: int | str) -> str:
    """What OpenCV's silenced warning would have said, in one line."""
    if isinstance(source, int) or source.startswith("/dev/"):
        device = f"/dev/video{source}" if isinstance(source, int) else source
        if not os.path.exists(device):
            return f"cannot open: no device {device}"
        if not os.access(device, os.R_OK | os.W_OK):
            return f"cannot open: no permission on {device} (the video group)"
        return f"cannot open {device} (busy or not a capture device)"
    return "cannot open (file missing, stream unreachable or unsupported)"


_REDUCED = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4),
            (2, cv2.IMREAD_REDUCED_COLOR_2))


def reduced_decode_flag(size: tuple[int, int], wanted: tuple[int, int] | None) -> int:
    """The cheapest imdecode flag whose picture is still at least `wanted` (width, height)."""
    if wanted is not None and wanted[0] > 0 and wanted[1] > 0:
        for factor, flag in _REDUCED:
            if size[0] // factor >= wanted[0] and size[1] // factor >= wanted[1]:
                return flag
    return cv2.IMREAD_COLOR


def is_packet(data: Any) -> bool:
    """True for a compressed frame (a one-row byte buffer) rather than a picture."""
    shape: tuple[int, ...] = tuple(getattr(data, "shape", ()))
    return len(shape) == 1 or (len(shape) == 2 and shape[0] == 1)


@dataclass
class _Newest:
    """The newest sampled frame: its time, its compressed packet and/or its full picture."""

    ts: float
    packet: Frame | None
    full: Frame | None


class OpenCVCamera:
    """Reads frames with cv2.VideoCapture in a worker thread; the loop only reads `latest()`.

    An open failure or a read failure is a state (`no_frames`), never an exception: the thread
    releases the device and reconnects with exponential backoff. A video file is replayed at
    `fps` and looped, which makes field recordings usable as a test source. Frames are decoded
    at `decode_hz` (None: every frame); `frames` counts frames grabbed, `decoded` those decoded
    (for the listener, at `sample_size` or the least larger DCT scale), `full_decodes` the
    full-size pictures `latest()` decoded from a kept packet, `wakeups` the read loop's turns.
    """

    def __init__(self, source: str, *, width: int = 640, height: int = 480, fps: float = 15.0,
                 decode_hz: float | None = None, sample_size: tuple[int, int] | None = None,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 open_timeout_ms: int = 5000) -> None:
        self.source = parse_source(source)
        self.width, self.height, self.fps = width, height, fps
        self._decode_hz = decode_hz
        self._decode_period = 0.0 if decode_hz is None else 1.0 / decode_hz
        self._sample_size = sample_size
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._open_timeout_ms = open_timeout_ms
        self._lock = threading.Lock()
        self._latest: _Newest | None = None
        self._listener: SampleListener | None = None
        self._frame_size = (width, height)
        self._file_frames = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "stopped"
        self.frames = 0
        self.decoded = 0
        self.reconnects = 0
        self.full_decodes = 0
        self.wakeups = 0
        self.raw_packets = False

    async def start(self) -> None:
        """Start the capture thread; opening happens there (it may block on a dead RTSP host)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.state = "connecting"
        self._thread = threading.Thread(target=self._run, name="camera-capture", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the thread and release the device (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        await asyncio.to_thread(thread.join, 10.0)
        if thread.is_alive():
            log.error("camera thread did not stop within 10 s (device read hangs)")
        self.state = "stopped"

    def listen(self, listener: SampleListener | None) -> None:
        """Hand every sampled frame to `listener(ts, frame)` in the capture thread (None: stop).

        The frame is BGR at `sample_size` or the least larger size the JPEG decodes to; the
        listener must be quick and must not touch the event loop except thread-safely."""
        self._listener = listener

    def sample_at(self, hz: float) -> None:
        """Decode (and hand to the listener) `hz` frames a second from now on."""
        self._decode_period = 1.0 / hz

    def latest(self) -> tuple[float, Frame] | None:
        """(monotonic capture time, full-size BGR frame), or None while no frames arrive.

        A compressed frame is decoded here, once, on first request (evidence needs the full
        picture; the analysis never asks)."""
        with self._lock:
            newest = self._latest
            if newest is None:
                return None
            if newest.full is None and newest.packet is not None:
                newest.full = _decode(newest.packet, cv2.IMREAD_COLOR)
                self.full_decodes += 1
            return None if newest.full is None else (newest.ts, newest.full)

    def _open(self) -> Any:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._open_timeout_ms]
        cap = cv2.VideoCapture(self.source, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            return None
        mjpeg = _fourcc(cap) == "MJPG"
        if self._is_file():
            self.raw_packets = mjpeg and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
            # a wake-up never asks for more packets than a (short) recording holds
            self._file_frames = max(1, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        elif self._is_device():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a stale queue
            if self._decode_hz is not None:
                cap.set(cv2.CAP_PROP_FPS, self._decode_hz)  # fewer frames to dequeue
            self.raw_packets = mjpeg and bool(cap.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width > 0 and height > 0:
            self._frame_size = (width, height)
        return cap

    def _is_device(self) -> bool:
        return isinstance(self.source, int) or self.source.startswith("/dev/")

    def _is_file(self) -> bool:
        return isinstance(self.source, str) and "://" not in self.source \
            and not self.source.startswith("/dev/")

    def _run(self) -> None:
        delay = self._backoff_initial
        failing = False
        is_file = self._is_file()
        while not self._stop.is_set():
            cap = None
            try:
                cap = self._open()
                if cap is None:
                    raise OSError(_why_not_open(self.source))
                got = self._read_loop(cap, is_file)
            except Exception as exc:  # a driver error is a state: log once, back off, retry
                got = False
                if not failing:
                    log.warning("camera %s: no frames (%s); retrying with backoff",
                                _redact(self.source), exc)
            finally:
                if cap is not None:
                    cap.release()
            if self._stop.is_set():
                break
            if got:
                delay = self._backoff_initial
                failing = False
                if is_file:
                    continue  # looped replay
            else:
                failing = True
            with self._lock:
                self._latest = None
            self.state = "no_frames"
            self.reconnects += 1
            self._stop.wait(delay)
            delay = min(delay * 2, self._backoff_max)

    def _read_loop(self, cap: Any, is_file: bool) -> bool:
        """Grab until failure or stop, decoding one frame per decode period; True when at least
        one frame came."""
        period = 1.0 / self.fps
        # a file plays the camera asked for decode_hz: it wakes per sample, not per packet
        got = False
        next_decode = 0.0
        while not self._stop.is_set():
            t0 = time.monotonic()
            self.wakeups += 1
            decode_period = self._decode_period  # sample_at() may change it at any time
            per_wake = max(1, min(round(decode_period * self.fps), self._file_frames)) \
                if is_file else 1
            for _ in range(per_wake):
                if not cap.grab():
                    return got
                self.frames += 1
            if t0 >= next_decode:
                ok, data = cap.retrieve()
                if not ok or data is None or not self._take(data):
                    return got
                if not got:
                    log.info("camera %s: frames arriving (%dx%d)", _redact(self.source),
                             *self._frame_size)
                got = True
                self.state = "streaming"
                # the next decode one period after this one, not after a late grab: no drift
                next_decode = max(next_decode + decode_period, t0) \
                    if next_decode else t0 + decode_period
            if is_file:
                self._stop.wait(max(0.0, per_wake * period - (time.monotonic() - t0)))
        return got

    def _take(self, data: Frame) -> bool:
        """Keep a retrieved frame as the newest and hand its sample to the listener; False
        when it cannot be decoded."""
        listener = self._listener
        if is_packet(data):
            packet: Frame | None = data
            full = None
            sample = None
            if listener is not None:
                sample = _decode(data, reduced_decode_flag(self._frame_size, self._sample_size))
            else:
                full = sample = _decode(data, cv2.IMREAD_COLOR)
            if sample is None:
                return False
        else:
            packet, full, sample = None, data, data
        self.decoded += 1
        ts = time.monotonic()
        with self._lock:
            self._latest = _Newest(ts, packet, full)
        if listener is not None:
            try:
                listener(ts, sample)
            except Exception:  # the listener's own failure must not stop the camera
                log.exception("camera frame listener failed")
        return True


def _decode(packet: Frame, flag: int) -> Frame | None:
    """A JPEG packet decoded with `flag`, None when it is not one."""
    img = cv2.imdecode(packet, flag)
    return None if img is None else np.asarray(img, dtype=np.uint8)


def _fourcc(cap: Any) -> str:
    """The capture's codec as its four characters ('MJPG'), '' when it does not say."""
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, "little").decode("ascii", "replace") if code > 0 else ""
