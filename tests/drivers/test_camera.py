"""OpenCV camera driver on real OpenCV: a recorded video file streams; a missing device is a state."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import cv2

from lockerd.drivers.base import FrameSource
from lockerd.drivers.camera import OpenCVCamera, _redact, parse_source, reduced_decode_flag
from lockerd.sim.camera import SimCamera


def write_video(path: Path, frames: int = 12) -> None:
    cam = SimCamera(320, 240)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15.0, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(cam.render("normal", i / 15))
    writer.release()


async def test_video_file_streams_and_loops(tmp_path: Path) -> None:
    video = tmp_path / "rec.avi"
    write_video(video)
    cam = OpenCVCamera(str(video), fps=60.0)
    assert isinstance(cam, FrameSource)
    await cam.start()
    try:
        t0 = time.monotonic()
        while cam.frames < 30 and time.monotonic() - t0 < 15:  # noqa: ASYNC110  (more than the file holds)
            await asyncio.sleep(0.02)
        latest = cam.latest()
        assert latest is not None
        assert latest[1].shape == (240, 320, 3)
        assert cam.frames >= 30
        assert cam.state == "streaming"
    finally:
        await cam.stop()
    assert cam.state == "stopped"


async def test_missing_device_is_a_state_not_an_exception(tmp_path: Path) -> None:
    cam = OpenCVCamera(str(tmp_path / "no-such-camera.avi"), backoff_initial=0.05, backoff_max=0.1)
    await cam.start()
    try:
        t0 = time.monotonic()
        while cam.reconnects < 3 and time.monotonic() - t0 < 15:  # noqa: ASYNC110  (thread counter)
            await asyncio.sleep(0.02)
        assert cam.state == "no_frames"
        assert cam.latest() is None
        assert cam.reconnects >= 3
    finally:
        await cam.stop()


def test_source_parsing_and_redaction() -> None:
    assert parse_source("0") == 0
    assert parse_source("/dev/video2") == "/dev/video2"
    assert _redact("rtsp://admin:secret@10.0.0.5/stream") == "rtsp://***@10.0.0.5/stream"
    assert "secret" not in _redact("rtsp://admin:secret@cam/x")


async def test_only_one_frame_per_decode_period_is_decoded(tmp_path: Path) -> None:
    # issue 19: every frame is grabbed (the stream stays live), only the sampled ones decoded
    video = tmp_path / "rec.avi"
    write_video(video)
    cam = OpenCVCamera(str(video), fps=60.0, decode_hz=10.0)
    await cam.start()
    try:
        t0 = time.monotonic()
        while cam.frames < 90 and time.monotonic() - t0 < 15:  # noqa: ASYNC110  (thread counter)
            await asyncio.sleep(0.02)
        seconds = time.monotonic() - t0
        latest = cam.latest()
        assert latest is not None
        assert latest[1].shape == (240, 320, 3)
        assert cam.frames >= 90
        assert 1 <= cam.decoded <= 10.0 * seconds + 2
        assert cam.decoded * 3 <= cam.frames
        assert cam.raw_packets  # MJPEG read like V4L2: grabbed compressed, decoded when sampled
    finally:
        await cam.stop()


async def test_a_non_mjpeg_file_is_decoded_by_opencv(tmp_path: Path) -> None:
    video = tmp_path / "rec.avi"
    sim = SimCamera(320, 240)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"XVID"), 15.0, (320, 240))
    assert writer.isOpened()
    for i in range(12):
        writer.write(sim.render("normal", i / 15))
    writer.release()
    cam = OpenCVCamera(str(video), fps=60.0, decode_hz=10.0)
    await cam.start()
    try:
        t0 = time.monotonic()
        while cam.latest() is None and time.monotonic() - t0 < 15:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        latest = cam.latest()
        assert latest is not None
        assert latest[1].shape == (240, 320, 3)
        assert not cam.raw_packets  # imdecode cannot read MPEG-4 packets: OpenCV decodes them
    finally:
        await cam.stop()


async def test_sampled_frames_reach_the_listener_small_and_the_full_picture_only_on_request(
        tmp_path: Path) -> None:
    # issue 19: the analysis gets the JPEG decoded at a quarter size (DCT scaling) in the
    # capture thread; the full picture is decoded from the kept packet once, for evidence
    video = tmp_path / "rec.avi"
    write_video(video)
    cam = OpenCVCamera(str(video), fps=60.0, decode_hz=10.0, sample_size=(80, 60))
    shapes: list[tuple[int, ...]] = []
    cam.listen(lambda _ts, frame: shapes.append(frame.shape))
    await cam.start()
    try:
        t0 = time.monotonic()
        while len(shapes) < 8 and time.monotonic() - t0 < 15:  # noqa: ASYNC110  (thread counter)
            await asyncio.sleep(0.02)
        assert set(shapes) == {(60, 80, 3)}
        assert cam.full_decodes == 0
        first = cam.latest()
        second = cam.latest()
        assert first is not None
        assert second is not None
        if first[0] == second[0]:
            assert first[1] is second[1]  # decoded once per packet
        assert first[1].shape == (240, 320, 3)
        assert 1 <= cam.full_decodes <= 2
        # a file plays the camera asked for 10 frames a second: one wake-up per sample, the
        # packets in between (60 fps) only demuxed
        assert cam.wakeups * 4 <= cam.frames
    finally:
        await cam.stop()


async def test_the_sampling_rate_can_change_while_streaming(tmp_path: Path) -> None:
    video = tmp_path / "rec.avi"
    write_video(video, frames=12)  # shorter than one slow wake's packets: replayed all the same
    cam = OpenCVCamera(str(video), fps=60.0, decode_hz=20.0, sample_size=(80, 60))
    times: list[float] = []
    cam.listen(lambda ts, _frame: times.append(ts))
    await cam.start()
    try:
        await asyncio.sleep(1.0)
        cam.sample_at(4.0)
        await asyncio.sleep(0.3)
        n = len(times)
        await asyncio.sleep(2.0)
        assert len(times) - n <= 4.0 * 2.0 + 2
        assert len(times) - n >= 3
    finally:
        await cam.stop()


def test_reduced_decoding_picks_the_cheapest_scale_still_large_enough() -> None:
    assert reduced_decode_flag((640, 480), (160, 120)) == cv2.IMREAD_REDUCED_COLOR_4
    assert reduced_decode_flag((640, 480), (80, 60)) == cv2.IMREAD_REDUCED_COLOR_8
    assert reduced_decode_flag((640, 480), (320, 240)) == cv2.IMREAD_REDUCED_COLOR_2
    assert reduced_decode_flag((320, 240), (320, 240)) == cv2.IMREAD_COLOR
    assert reduced_decode_flag((640, 480), None) == cv2.IMREAD_COLOR
