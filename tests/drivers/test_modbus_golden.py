"""The bytes the Modbus driver puts on the wire equal the golden frames of docs/boards.md."""

from __future__ import annotations

import asyncio
from typing import Any

from lockerd.drivers.base import DoorState

GOLDEN_PULSE = bytes.fromhex("01 05 02 00 00 07 8D B0")
GOLDEN_READ = bytes.fromhex("01 02 00 00 00 08 79 CC")


async def test_waveshare_pulse_frame_is_golden(make_rig: Any) -> None:
    rig = await make_rig(baudrate=9600, start=False)
    await rig.boards[1].pulse(0, 700)
    assert rig.frames() == [GOLDEN_PULSE]
    assert rig.sim.board("bus0", 1).pulse_counts()[0] == 1


async def test_waveshare_read_frame_is_golden(make_rig: Any) -> None:
    rig = await make_rig(baudrate=9600, start=False)
    snap = await rig.boards[1].read()
    assert rig.frames() == [GOLDEN_READ]
    assert snap.doors == (DoorState.CLOSED,) * 8


async def test_waveshare_start_forces_all_relays_off(make_rig: Any) -> None:
    rig = await make_rig(start=True)
    # FC05 coil 0x00FF value 0x0000 (Waveshare "all relays"), CRC from the Modbus spec.
    assert rig.frames() == [bytes.fromhex("01 05 00 FF 00 00 FD FA")]


async def test_coil_profile_on_then_off_and_fc0f_at_start(make_rig: Any) -> None:
    rig = await make_rig(profile="modbus-coil", channels=8)
    assert rig.frames()[0] == bytes.fromhex("01 0F 00 00 00 08 01 00 FE 95")
    await rig.boards[1].pulse(2, 100)
    assert rig.frames()[1] == bytes.fromhex("01 05 00 02 FF 00 2D FA")
    model = rig.sim.board("bus0", 1)
    assert model.relays(rig.sim.now())[2]
    for _ in range(100):
        await asyncio.sleep(0.02)
        if not model.relays(rig.sim.now())[2]:
            break
    assert rig.frames()[2] == bytes.fromhex("01 05 00 02 00 00 6C 0A")
    assert not any(model.relays(rig.sim.now()))


async def test_polarity_from_config(make_rig: Any) -> None:
    rig = await make_rig(active_low=True)
    assert (await rig.boards[1].read()).doors == (DoorState.CLOSED,) * 8
    rig.sim.faults.force_open("bus0", 1, 3, rig.sim.now())
    snap = await rig.boards[1].read()
    assert snap.doors[3] is DoorState.OPEN
    assert snap.doors.count(DoorState.OPEN) == 1
