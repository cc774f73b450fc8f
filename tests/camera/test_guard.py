"""Camera guard end to end on the simulated camera: every tamper mode closes intake and recovers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import cv2
import pytest
from pydantic import ValidationError

from lockerd.api.server import ApiServer, Caller, Role
from lockerd.app.events import Alert, AlertKind, EventBus
from lockerd.camera.guard import CameraGuard, EvidencePlace, IntakeChanged, IntakeGate
from lockerd.config import Api, Camera
from lockerd.sim.camera import TAMPER_MODES, SimCamera

DOWN_MODES = {"frozen", "unplugged"}


async def wait_for(pred: Callable[[], bool], limit_s: float) -> float:
    """Seconds until pred() held (polled: the guard has no event for every check); fails after limit_s."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > limit_s:
            pytest.fail(f"condition not met within {limit_s} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


@contextlib.asynccontextmanager
async def running(guard: CameraGuard) -> AsyncIterator[None]:
    await guard.start()
    task = asyncio.create_task(guard.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await guard.stop()


@pytest.mark.parametrize("mode", TAMPER_MODES)
async def test_tamper_mode_closes_intake_and_recovery_reopens_it(fast_cfg: Camera, mode: str) -> None:
    cam = SimCamera(320, 240, fps=30.0)
    bus = EventBus()
    alerts = bus.subscribe(Alert)
    changes = bus.subscribe(IntakeChanged)
    guard = CameraGuard(fast_cfg, cam, bus)
    assert isinstance(guard, IntakeGate)
    async with running(guard):
        assert not guard.is_open(), "intake must start closed until the scene is learnt"
        await wait_for(guard.is_open, 15)
        assert (await changes.get()).open

        cam.set_mode(mode)
        # configured worst case: detection time + hold + one sample; generous slack for a loaded CI
        detect = fast_cfg.frozen_after_s if mode == "frozen" else (
            fast_cfg.down_after_s if mode == "unplugged" else 0.0)
        # a steady scene is sampled at the idle rate: the change is seen up to one idle period late
        limit = detect + fast_cfg.bad_hold_s + 1 / fast_cfg.idle_sample_hz + 2 / fast_cfg.sample_hz
        took = await wait_for(lambda: not guard.is_open(), limit + 3.0)
        expected = "camera_down" if mode in DOWN_MODES else "camera_obstructed"
        assert guard.reason() == expected
        closed = await changes.get()
        assert (closed.open, closed.reason) == (False, expected)
        alert = await alerts.get()
        kind = AlertKind.CAMERA_DOWN if mode in DOWN_MODES else AlertKind.CAMERA_OBSTRUCTED
        assert (alert.kind, alert.active) == (kind, True)
        assert guard.status()["intake"] == {"open": False, "reason": expected}
        assert took < limit + 3.0

        cam.set_mode("normal")
        await wait_for(guard.is_open, 10)
        assert guard.reason() is None
        reopened = await changes.get()
        assert reopened.open
        assert reopened.reason is None
        cleared = await alerts.get()
        assert (cleared.kind, cleared.active) == (kind, False)


async def test_benign_scene_changes_do_not_flap_the_gate(fast_cfg: Camera) -> None:
    cam = SimCamera(320, 240, fps=30.0)
    bus = EventBus()
    changes = bus.subscribe(IntakeChanged)
    guard = CameraGuard(fast_cfg, cam, bus)
    async with running(guard):
        await wait_for(guard.is_open, 15)
        assert (await changes.get()).open
        for mode in ("person", "shadow", "dim", "shake", "night", "ir", "normal", "shadow") * 2:
            cam.set_mode(mode)
            await asyncio.sleep(0.15)
            assert guard.is_open(), f"intake closed on benign mode {mode}: {guard.status()}"
        assert changes.queue.empty()
        status = guard.status()
        assert (status["verdict"], status["check"]) == ("ok", "ok")
        assert "day" in status["regimes"]


async def test_camera_down_at_start_alerts_and_stays_closed(fast_cfg: Camera) -> None:
    cam = SimCamera(320, 240, fps=30.0)
    cam.set_mode("unplugged")
    bus = EventBus()
    alerts = bus.subscribe(Alert)
    guard = CameraGuard(fast_cfg, cam, bus)
    async with running(guard):
        alert = await asyncio.wait_for(alerts.get(), 10)
        assert (alert.kind, alert.active) == (AlertKind.CAMERA_DOWN, True)
        assert not guard.is_open()
        assert guard.reason() == "camera_down"


async def test_intake_fails_closed_when_verdicts_stop_coming(fast_cfg: Camera,
                                                             sim_camera: SimCamera) -> None:
    """A stalled analysis loop must not leave intake open: freshness is checked on every ask."""
    now = [0.0]
    guard = CameraGuard(fast_cfg, sim_camera, EventBus(), clock=lambda: now[0])
    await guard.start()
    try:
        while not guard.gate.open:
            now[0] += 0.05
            await guard.sample_once()
            await asyncio.sleep(0.04)  # let the sim produce the next frame
            assert now[0] < 60, guard.status()
        assert guard.is_open()
        now[0] += fast_cfg.fresh_s + 0.01  # no sample for longer than fresh_s
        assert not guard.is_open()
        assert guard.reason() == "camera_down"  # stale verdict: treated as no camera
    finally:
        await guard.stop()


async def test_camera_status_api_for_technicians(fast_cfg: Camera, sim_camera: SimCamera,
                                                 tmp_path: Path) -> None:
    api = ApiServer(Api(), tmp_path / "api.sock")
    guard = CameraGuard(fast_cfg, sim_camera, EventBus())
    guard.register_api(api)
    tech = Caller(1, 1000, 1000, frozenset({Role.TECH}))
    panel = Caller(1, 1001, 1001, frozenset({Role.PANEL}))
    reply = await api.dispatch(json.dumps({"id": 1, "method": "camera.status"}).encode(), tech)
    assert reply["ok"]
    assert reply["result"]["intake"] == {"open": False, "reason": "camera_starting"}
    assert set(reply["result"]) >= {"verdict", "scores", "intake", "reference", "regime",
                                    "compared_with", "regimes", "check"}
    assert (reply["result"]["regimes"], reply["result"]["check"]) == ([], "learning")
    refused = await api.dispatch(json.dumps({"method": "camera.status"}).encode(), panel)
    assert refused["error"]["code"] == "forbidden"


async def test_guard_records_camera_state_and_evidence(fast_cfg: Camera, sim_camera: SimCamera,
                                                       tmp_path: Path) -> None:
    guard = CameraGuard(fast_cfg, sim_camera, EventBus(),
                        evidence=EvidencePlace(tmp_path / "evidence.db", b"k" * 32))
    store = guard.evidence
    assert store is not None
    async with running(guard):
        await wait_for(guard.is_open, 15)
        state = guard.camera_state()
        assert state == {"verdict": "ok", "intake_open": True, "reason": None}
        ref = await guard.snapshot_ref("op-7:door_open")
        assert ref is not None
        assert await store.verify(ref)
    assert await guard.snapshot_ref("op-7:door_close") is None  # store closed with the guard


def test_config_keeps_close_within_one_second() -> None:
    with pytest.raises(ValidationError, match="within 1 s"):
        Camera(sample_hz=1.0, bad_hold_s=0.5)
    with pytest.raises(ValidationError, match="within 1 s"):
        Camera(sample_hz=5.0, idle_sample_hz=1.0, bad_hold_s=0.5)  # a steady scene is sampled slower
    with pytest.raises(ValidationError, match="idle_sample_hz must not exceed"):
        Camera(sample_hz=5.0, idle_sample_hz=10.0)
    with pytest.raises(ValidationError, match="4:3 or 16:9"):
        Camera(analysis_width=160, analysis_height=100)
    with pytest.raises(ValidationError):
        Camera(fresh_s=5.0)  # regulation-driven bound: a verdict older than 2 s is no verdict
    with pytest.raises(ValidationError, match="regime_night_below"):
        Camera(regime_night_below=100.0, regime_dusk_below=90.0)
    with pytest.raises(ValidationError):
        Camera(max_rotation_deg=45.0)  # a camera turned that far is not "shaking"


@pytest.mark.parametrize("mode", ["covered", "frozen"])
async def test_a_camera_decoding_only_the_sampled_frames_still_closes_intake_in_time(
        fast_cfg: Camera, mode: str) -> None:
    # issue 19: the source decodes sample_hz frames a second, not every frame it grabs, and
    # OpenCV runs the configured number of threads; Art. 19's close time is unchanged
    cam = SimCamera(320, 240, fps=30.0, decode_hz=fast_cfg.sample_hz)
    bus = EventBus()
    guard = CameraGuard(fast_cfg, cam, bus)
    async with running(guard):
        assert cv2.getNumThreads() == fast_cfg.cv_threads == 1
        await wait_for(guard.is_open, 15)
        cam.set_mode(mode)
        detect = fast_cfg.frozen_after_s if mode == "frozen" else 0.0
        limit = detect + fast_cfg.bad_hold_s + 1 / fast_cfg.idle_sample_hz + 2 / fast_cfg.sample_hz
        took = await wait_for(lambda: not guard.is_open(), limit + 3.0)
        assert took < limit + 3.0
        assert guard.reason() == ("camera_down" if mode == "frozen" else "camera_obstructed")
    assert 0 < cam.decoded < cam.frames * 0.85
