"""The board base class guards every relay pulse: channel checked, duration capped at the profile maximum."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import pytest

from lockerd.drivers.lockboard_modbus import FLASH_BASE
from lockerd.drivers.profiles import PROFILES

ALL_PROFILES = tuple(PROFILES)


async def test_a_pulse_longer_than_the_profile_maximum_is_capped_on_the_wire(
        make_rig: Any, caplog: pytest.LogCaptureFixture) -> None:
    rig = await make_rig(profile="modbus-waveshare", start=False)
    board = rig.boards[1]
    limit = PROFILES["modbus-waveshare"].max_pulse_ms
    with caplog.at_level(logging.WARNING, logger="lockerd.drivers.lockboard_common"):
        await board.pulse(3, limit * 4)
    (frame,) = rig.frames()
    unit, fc, coil, units = struct.unpack(">BBHH", frame[:6])
    # FC05 to the board's flash coil; the value is the pulse in 100 ms units: the cap, not 4x it.
    assert (unit, fc, coil) == (1, 5, FLASH_BASE + 3)
    assert units * 100 == limit
    assert board.pulses_capped == 1
    assert board.info()["pulses_capped"] == 1
    assert any("capped" in r.getMessage() for r in caplog.records)


async def test_a_pulse_within_the_maximum_is_sent_as_asked(make_rig: Any) -> None:
    rig = await make_rig(profile="modbus-waveshare", start=False)
    await rig.boards[1].pulse(0, 1200)
    (frame,) = rig.frames()
    assert struct.unpack(">H", frame[4:6]) == (12,)
    assert rig.boards[1].pulses_capped == 0


async def test_a_driver_timed_relay_is_switched_off_after_the_capped_time(make_rig: Any) -> None:
    rig = await make_rig(profile="modbus-coil", start=False)
    limit_s = PROFILES["modbus-coil"].max_pulse_ms / 1000
    await rig.boards[1].pulse(2, PROFILES["modbus-coil"].max_pulse_ms + 5000)
    bus = rig.sim.bus("bus0")
    async with asyncio.timeout(limit_s + 2.0):
        while len(bus.rx_frames) < 2:  # noqa: ASYNC110 - frames arrive in the simulator's thread
            await asyncio.sleep(0.02)
    (t_on, on), (t_off, off) = bus.rx_frames
    assert on[2:6] == bytes.fromhex("0002 FF00")
    assert off[2:6] == bytes.fromhex("0002 0000")
    assert limit_s - 0.05 <= t_off - t_on <= limit_s + 0.5


@pytest.mark.parametrize("profile", ALL_PROFILES)
async def test_a_channel_the_board_lacks_is_refused_before_anything_is_sent(
        make_rig: Any, profile: str) -> None:
    rig = await make_rig(profile=profile, channels=4, start=False)
    board = rig.boards[1]
    sent = len(rig.frames())
    for channel in (4, -1, 63):
        with pytest.raises(ValueError, match="no channel"):
            await board.pulse(channel, 500)
    with pytest.raises(ValueError, match="pulse of 0 ms"):
        await board.pulse(0, 0)
    await asyncio.sleep(0.1)
    assert len(rig.frames()) == sent
    assert board.pulses_sent == 0
    assert not any(rig.sim.board("bus0", 1).pulse_counts())
