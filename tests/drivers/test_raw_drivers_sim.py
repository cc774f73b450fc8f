"""Kerong and 0x8A drivers against the byte-exact simulator on a pty: golden bytes, occupancy, faults."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from lockerd.drivers.base import DoorState
from lockerd.drivers.bus import Priority
from lockerd.drivers.errors import DriverTimeout, FrameError
from lockerd.drivers.lockboard_8a import Board8A
from lockerd.drivers.lockboard_kerong import KerongBoard
from tests.fixtures.door_rig import GivenBoards

H = bytes.fromhex
PROFILES = ("kerong-cu16", "rs485-8a")


async def wait_for(pred: Any, limit_s: float = 5.0) -> None:
    async with asyncio.timeout(limit_s):
        while not pred():  # noqa: ASYNC110 - state of the simulator thread, no event to await
            await asyncio.sleep(0.02)


async def test_kerong_driver_puts_golden_frames_on_the_wire(raw_rig: Any) -> None:
    rig = await raw_rig("kerong-cu16", addresses=(0,), channels=16)
    board = rig.boards.boards[0]
    assert isinstance(board, KerongBoard)
    await board.pulse(0, 700)
    snap = await board.read()
    assert rig.frames() == [H("02 00 31 03 36"), H("02 00 30 03 35")]
    assert rig.pulses(0)[0] == 1
    assert snap.doors[0] in (DoorState.OPEN, DoorState.CLOSED)
    await wait_for(lambda: rig.sim.board("bus0", 0).door_open(rig.sim.now())[0])
    assert (await board.read()).doors[0] is DoorState.OPEN
    # The simulator's reply is the 9-byte status frame of docs/boards.md.
    reply = rig.sim.bus("bus0").tx_frames[-1][1]
    assert reply[:3] == H("02 00 35")
    assert len(reply) == 9
    assert reply[3] & 1


async def test_8a_driver_puts_golden_frames_on_the_wire_and_waits_for_the_slow_reply(raw_rig: Any) -> None:
    rig = await raw_rig("rs485-8a")
    board = rig.boards.boards[1]
    assert isinstance(board, Board8A)
    t0 = time.monotonic()
    await board.pulse(0, 700)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.45  # the board answers only after its ~500 ms pulse
    assert board.last_open_status is True
    await board.read()
    assert rig.frames() == [H("8A 01 01 11 9B"), H("80 01 00 33 B2")]
    assert rig.sim.bus("bus0").tx_frames[0][1] == H("8A 01 01 11 9B")


async def test_kerong_infrared_occupancy_is_reported(raw_rig: Any) -> None:
    rig = await raw_rig("kerong-cu16", addresses=(2,), channels=16)
    board = rig.boards.boards[2]
    assert (await board.read()).occupied == (False,) * 16
    rig.frontend.set_occupied(2, 5)
    snap = await board.read()
    assert snap.occupied is not None
    assert [i for i, x in enumerate(snap.occupied) if x] == [5]
    assert snap.doors == (DoorState.CLOSED,) * 16  # occupancy is not a door
    rig.frontend.set_occupied(2, 5, False)
    assert not any((await board.read()).occupied or ())


async def test_8a_board_has_no_occupancy(raw_rig: Any) -> None:
    rig = await raw_rig("rs485-8a", channels=20)
    snap = await rig.boards.boards[1].read()
    assert snap.occupied is None
    assert len(snap.doors) == 20


@pytest.mark.parametrize("profile", PROFILES)
async def test_polarity_from_config(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile, active_low=True)
    board = rig.boards.boards[1]
    assert (await board.read()).doors == (DoorState.CLOSED,) * 8
    rig.sim.faults.force_open("bus0", 1, 3, rig.sim.now())
    snap = await board.read()
    assert [i for i, d in enumerate(snap.doors) if d is DoorState.OPEN] == [3]


@pytest.mark.parametrize("profile", PROFILES)
async def test_lost_unlock_reply_is_a_timeout_and_never_resent(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile)
    rig.sim.faults.no_reply("bus0", 1)
    with pytest.raises(DriverTimeout):
        await rig.boards.boards[1].pulse(2, 500)
    assert rig.pulses(1) == [0, 0, 1, 0, 0, 0, 0, 0]
    assert len(rig.frames()) == 1
    # The door opened all the same, and the line works again (after quiet-and-flush).
    await wait_for(lambda: rig.sim.board("bus0", 1).door_open(rig.sim.now())[2])
    assert (await rig.boards.boards[1].read()).doors[2] is DoorState.OPEN
    assert rig.bus.scheduler.settles >= 1


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("fault", ["corrupt_crc", "truncate"])
async def test_bad_unlock_reply_is_dropped_counted_and_not_resent(raw_rig: Any, profile: str,
                                                                  fault: str) -> None:
    rig = await raw_rig(profile)
    getattr(rig.sim.faults, fault)("bus0", 1)
    with pytest.raises(FrameError):
        await rig.boards.boards[1].pulse(0, 500)
    assert rig.pulses(1)[0] == 1
    assert len(rig.frames()) == 1
    assert rig.bus.garbled == 1
    assert rig.bus.bad_frames >= 1 or fault == "truncate"
    snap = await rig.boards.boards[1].read()
    assert snap.doors[0] in (DoorState.OPEN, DoorState.CLOSED)


@pytest.mark.parametrize("profile", PROFILES)
async def test_bad_read_reply_is_retried_once(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile)
    rig.sim.faults.corrupt_crc("bus0", 1)
    snap = await rig.boards.boards[1].read()
    assert snap.doors == (DoorState.CLOSED,) * 8
    assert len(rig.frames()) == 2
    assert rig.bus.bad_frames >= 1


@pytest.mark.parametrize("profile", PROFILES)
async def test_stale_bytes_and_noise_never_answer_a_request(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile)
    board = rig.boards.boards[1]
    # A complete, valid-looking reply of another state sits in the input before the request.
    if profile == "kerong-cu16":
        from lockerd.drivers.frames_kerong import encode_status
        stale = H("55 aa") + encode_status(1, [True] * 16, [False] * 16)
    else:
        from lockerd.drivers.frames_8a import encode_read_reply
        stale = H("55 aa") + encode_read_reply(1, [True] * 8, 1)
    rig.sim.faults.inject_garbage("bus0", stale)
    rig.sim.wake()
    await wait_for(lambda: any(d == stale for _, d in rig.sim.bus("bus0").tx_frames))
    await asyncio.sleep(0.05)
    snap = await board.read()
    assert snap.doors == (DoorState.CLOSED,) * 8
    assert rig.bus.stale_bytes >= len(stale)


@pytest.mark.parametrize("profile", PROFILES)
async def test_silent_board_times_out_other_board_answers(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile, addresses=(1, 2))
    rig.sim.faults.unplug("bus0", 1)
    with pytest.raises(DriverTimeout):
        await rig.boards.boards[1].read()
    assert (await rig.boards.boards[2].read()).doors == (DoorState.CLOSED,) * 8
    rig.sim.faults.unplug("bus0", 1, False)
    assert (await rig.boards.boards[1].read()).doors == (DoorState.CLOSED,) * 8


async def test_8a_busy_board_stays_silent_then_recovers(raw_rig: Any) -> None:
    rig = await raw_rig("rs485-8a")
    rig.frontend.busy(1, 0.6, rig.sim.now())
    with pytest.raises(DriverTimeout):
        await rig.boards.boards[1].read()
    assert rig.frontend.ignored_busy == 2
    await asyncio.sleep(0.4)
    assert (await rig.boards.boards[1].read()).doors == (DoorState.CLOSED,) * 8


@pytest.mark.parametrize("profile", PROFILES)
async def test_unlock_jumps_ahead_of_queued_polls(raw_rig: Any, profile: str) -> None:
    rig = await raw_rig(profile, addresses=(1, 2, 3))
    boards = rig.boards.boards
    reads = [asyncio.create_task(boards[a].read()) for a in (1, 2, 3, 1, 2)]
    await asyncio.sleep(0)
    await wait_for(lambda: rig.bus.scheduler.queued >= 3)
    pulse = asyncio.create_task(boards[3].pulse(4, 500))
    await asyncio.gather(pulse, *reads)
    frames = rig.frames()
    first_open = next(i for i, f in enumerate(frames) if f[0] in (0x8A,) or f[2:3] == b"\x31")
    assert first_open <= 1  # only the read already on the wire went before the unlock
    assert len(frames) == 6
    assert rig.sim.bus("bus0").collisions == 0


@pytest.mark.parametrize("profile", PROFILES)
def test_driver_refuses_addresses_the_profile_cannot_carry(profile: str) -> None:
    from lockerd.drivers.rawbus import RawSerialBus
    bus = RawSerialBus("b", "/dev/null")
    if profile == "kerong-cu16":
        with pytest.raises(ValueError, match="address"):
            KerongBoard(bus, 16)
        with pytest.raises(ValueError, match="channels"):
            KerongBoard(bus, 1, 17)
    else:
        with pytest.raises(ValueError, match="channels"):
            Board8A(bus, 1, 57)
    assert Priority.UNLOCK < Priority.POLL


async def test_controller_opens_an_8a_door_with_the_realistic_half_second_reply(raw_rig: Any) -> None:
    """The board answers only after its ~500 ms pulse; with a person who takes 2 s, one pulse does it."""
    from lockerd.app.events import EventBus
    from lockerd.config import Compartment, Doors, Size
    from lockerd.doors.controller import DoorController
    from lockerd.doors.events import Outcome

    rig = await raw_rig("rs485-8a", close_after_s=2.0)
    assert rig.frontend.unlock_reply_s == 0.5
    comps = [Compartment(id=ch + 1, size=Size.S, board=1, channel=ch) for ch in range(8)]
    ctl = DoorController(Doors(), comps, EventBus(), GivenBoards(rig.boards.boards))
    await ctl.start()
    task = asyncio.create_task(ctl.run())
    try:
        await wait_for(lambda: ctl.state(4) is DoorState.CLOSED)
        result = await ctl.open(4, "test", "tester")
        assert result.outcome is Outcome.OPENED
        assert result.pulses == 1
        assert result.elapsed_s >= 0.45
        assert rig.pulses(1) == [0, 0, 0, 1, 0, 0, 0, 0]
        assert await ctl.wait_closed(4, 10.0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
