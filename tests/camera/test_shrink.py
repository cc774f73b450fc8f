"""Frames are shrunk to the analysis size by halvings that average as an area resize does."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lockerd.camera.frames import prepare_frame, shrink


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(640, 480), (1280, 960), (320, 240)]))
def test_a_power_of_two_reduction_is_the_area_mean_within_one_gray_level(seed: int,
                                                                          size: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)  # the hardest case: pure noise
    area = cv2.resize(gray, (160, 120), interpolation=cv2.INTER_AREA).astype(np.int16)
    got = shrink(gray, (160, 120))
    assert got.shape == (120, 160)
    assert int(np.abs(got.astype(np.int16) - area).max()) <= 1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(1280, 720), (1920, 1080), (800, 600), (161, 121),
                                                   (100, 80)]))
def test_any_other_size_keeps_its_shape_and_level(seed: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    gray = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    got = shrink(gray, (160, 120))
    assert got.shape == (120, 160)
    assert abs(float(got.mean()) - float(gray.mean())) <= 1.0


def test_a_frame_at_the_analysis_size_is_left_as_it_is() -> None:
    gray = np.random.default_rng(1).integers(0, 256, (120, 160), dtype=np.uint8)
    assert np.array_equal(prepare_frame(gray, (160, 120)).gray, gray.astype(np.float32))
