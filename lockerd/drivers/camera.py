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
`cv2.imdecode`: the file source costs what a V4L2 MJPEG camera costs (`raw_packets`).

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
from typing import Any

import cv2

from lockerd.drivers.base import Frame

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


class OpenCVCamera:
    """Reads frames with cv2.VideoCapture in a worker thread; the loop only reads `latest()`.

    An open failure or a read failure is a state (`no_frames`), never an exception: the thread
    releases the device and reconnects with exponential backoff. A video file is replayed at
    `fps` and looped, which makes field recordings usable as a test source. Frames are decoded
    at `decode_hz` (None: every frame); `frames` counts frames grabbed, `decoded` those decoded.
    """

    def __init__(self, source: str, *, width: int = 640, height: int = 480, fps: float = 15.0,
                 decode_hz: float | None = None, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0, open_timeout_ms: int = 5000) -> None:
        self.source = parse_source(source)
        self.width, self.height, self.fps = width, height, fps
        self._decode_period = 0.0 if decode_hz is None else 1.0 / decode_hz
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self._open_timeout_ms = open_timeout_ms
        self._lock = threading.Lock()
        self._latest: tuple[float, Frame] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = "stopped"
        self.frames = 0
        self.decoded = 0
        self.reconnects = 0
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

    def latest(self) -> tuple[float, Frame] | None:
        """(monotonic capture time, BGR frame), or None while no frames arrive."""
        with self._lock:
            return self._latest

    def _open(self) -> Any:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._open_timeout_ms,
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._open_timeout_ms]
        cap = cv2.VideoCapture(self.source, cv2.CAP_ANY, params)
        if not cap.isOpened():
            cap.release()
            return None
        self.raw_packets = self._is_file() and _fourcc(cap) == "MJPG" \
            and bool(cap.set(cv2.CAP_PROP_FORMAT, -1))
        if isinstance(self.source, int):
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a stale queue
        return cap

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
        got = False
        next_decode = 0.0
        while not self._stop.is_set():
            t0 = time.monotonic()
            if not cap.grab():
                return got
            self.frames += 1
            if t0 >= next_decode:
                ok, frame = cap.retrieve()
                if ok and frame is not None and self.raw_packets:
                    frame = cv2.imdecode(frame, cv2.IMREAD_COLOR)  # the JPEG of this frame
                if not ok or frame is None:
                    return got
                if not got:
                    log.info("camera %s: frames arriving (%dx%d)", _redact(self.source),
                             frame.shape[1], frame.shape[0])
                got = True
                self.state = "streaming"
                self.decoded += 1
                # the next decode one period after this one, not after a late grab: no drift
                next_decode = max(next_decode + self._decode_period, t0) \
                    if next_decode else t0 + self._decode_period
                with self._lock:
                    self._latest = (time.monotonic(), frame)
            if is_file:
                self._stop.wait(max(0.0, period - (time.monotonic() - t0)))
        return got


def _fourcc(cap: Any) -> str:
    """The capture's codec as its four characters ('MJPG'), '' when it does not say."""
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, "little").decode("ascii", "replace") if code > 0 else ""
