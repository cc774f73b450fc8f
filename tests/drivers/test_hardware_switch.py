"""The driver factory is the one switch between simulated and real hardware: boards, camera, pins."""

from __future__ import annotations

from pathlib import Path

from gpiozero.pins.mock import MockFactory

from lockerd.config import Board, Camera, Gpio, Hardware
from lockerd.drivers.camera import OpenCVCamera
from lockerd.drivers.factory import ENERGISED_FILE, build_hardware
from lockerd.sim.camera import SimCamera

BOARDS = [Board(address=1)]


def test_simulated_hardware_is_the_simulator_the_scene_and_mock_pins(tmp_path: Path) -> None:
    kit = build_hardware(Hardware(backend="sim", boards=BOARDS), Camera(width=320, height=240),
                         Gpio(enabled=True), state_dir=tmp_path)
    assert kit.simulated
    assert isinstance(kit.frame_source, SimCamera)
    assert isinstance(kit.pin_factory, MockFactory)
    kit.pin_factory.close()


def test_real_hardware_is_the_ports_the_camera_source_and_the_header(tmp_path: Path) -> None:
    kit = build_hardware(Hardware(backend="real", boards=BOARDS), Camera(source="rtsp://cam/1"),
                         Gpio(enabled=True), state_dir=tmp_path)
    assert not kit.simulated
    assert isinstance(kit.frame_source, OpenCVCamera)
    assert kit.frame_source.source == "rtsp://cam/1"
    assert kit.pin_factory is None  # gpiozero's default: the real pins
    # Driver-timed relays are remembered across restarts only on real hardware.
    assert kit.boards.energised_file == tmp_path / ENERGISED_FILE


def test_what_is_disabled_is_not_built(tmp_path: Path) -> None:
    kit = build_hardware(Hardware(backend="sim", boards=BOARDS), Camera(enabled=False),
                         Gpio(enabled=False), state_dir=tmp_path)
    assert kit.frame_source is None
    assert kit.pin_factory is None
    assert kit.boards.energised_file is None
