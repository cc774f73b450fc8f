"""[hardware] accepts the Kerong and 0x8A profiles within their wire limits, one wire protocol per bus."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lockerd.config import Board, Hardware, SerialPort


def hw(*boards: Board) -> Hardware:
    return Hardware(buses=[SerialPort(name="bus0"), SerialPort(name="bus1")], boards=list(boards))


def test_raw_profiles_are_accepted() -> None:
    h = hw(Board(address=15, channels=16, profile="kerong-cu16", bus="bus0"),
           Board(address=200, channels=50, profile="rs485-8a", bus="bus1"))
    assert [b.profile for b in h.boards] == ["kerong-cu16", "rs485-8a"]


@pytest.mark.parametrize(("address", "channels", "profile"), [
    (16, 8, "kerong-cu16"), (1, 17, "kerong-cu16"), (1, 57, "rs485-8a")])
def test_limits_of_the_frames_are_enforced(address: int, channels: int, profile: str) -> None:
    with pytest.raises(ValidationError, match="at most"):
        hw(Board(address=address, channels=channels, profile=profile))  # type: ignore[arg-type]


def test_one_wire_protocol_per_bus() -> None:
    with pytest.raises(ValidationError, match="mixes wire protocols"):
        hw(Board(address=1, profile="kerong-cu16"), Board(address=2, profile="modbus-waveshare"))
    hw(Board(address=1, profile="modbus-coil"), Board(address=2, profile="modbus-waveshare"))
