"""Fixtures for the camera tests: a fast-sampling guard config and a running simulated camera."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lockerd.config import Camera
from sim.camera import SimCamera


@pytest.fixture
def fast_cfg() -> Camera:
    """Sampling and hold times scaled down so a tamper cycle takes about a second."""
    return Camera(sample_hz=20.0, bad_hold_s=0.15, good_hold_s=0.3, frozen_after_s=0.5,
                  down_after_s=0.4, learn_frames=3, analysis_width=160, analysis_height=120)


@pytest.fixture
async def sim_camera() -> AsyncIterator[SimCamera]:
    """A running 320x240 simulated camera at 30 fps."""
    cam = SimCamera(320, 240, fps=30.0)
    await cam.start()
    try:
        yield cam
    finally:
        await cam.stop()
