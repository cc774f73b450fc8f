"""An idle Modbus poll sent now and read at the next slot (drivers/modbus_poll.py), on the pty sim:
its reply wakes nobody and is read with one non-blocking read; an exchange that wants the line
first reads that reply, so frames never interleave; a lost or garbled reply marks the line dirty
(settled before the next exchange), as for any exchange."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd import sim
from lockerd.config import Board, Hardware, SerialPort
from lockerd.drivers.base import BoardSnapshot, DoorState
from lockerd.drivers.errors import DriverError, DriverTimeout, FrameError
from lockerd.drivers.lockboard_modbus import ModbusBus, WaveshareBoard

BAUD = 115200
Result = BoardSnapshot | DriverError
Line = tuple[sim.SimHandle, ModbusBus, dict[int, WaveshareBoard]]


def _hw(boards: int) -> Hardware:
    return Hardware(buses=[SerialPort(name="b0", baudrate=BAUD)],
                    boards=[Board(address=a, bus="b0", channels=4) for a in range(1, boards + 1)])


@pytest.fixture
async def line() -> AsyncIterator[Line]:
    handle = sim.start_for_config(_hw(2), close_after_s=None)
    bus = ModbusBus("b0", handle.port("b0"), baudrate=BAUD, read_timeout_s=0.1,
                    write_timeout_s=0.1)
    try:
        await bus.open()
        yield handle, bus, {a: WaveshareBoard(bus, a, 4) for a in (1, 2)}
    finally:
        bus.close()
        handle.close()


async def test_a_reply_read_later_wakes_nobody_and_takes_one_read(line: Line) -> None:
    _handle, bus, boards = line
    got: list[Result] = []
    assert boards[1].poll_later(got.append)
    await asyncio.sleep(0.05)  # the reply has arrived long since
    assert bus._tap is not None
    assert not bus._tap.buf
    assert not got
    tries = 1
    while not bus.harvest():  # (a machine so busy that the simulator has not answered yet)
        assert tries < 100
        tries += 1
        await asyncio.sleep(0.02)
    assert got == [BoardSnapshot((DoorState.CLOSED,) * 4)]
    assert (bus.polls.sent_later, bus.polls.harvested, bus.polls.port_reads) == (1, 1, tries)
    assert bus.harvest()
    assert len(got) == 1
    assert bus.scheduler.pending is None


async def test_a_second_poll_waits_while_one_is_in_flight(line: Line) -> None:
    _, bus, boards = line
    got: list[Result] = []
    assert boards[1].poll_later(got.append)
    assert not boards[2].poll_later(got.append)  # the line is owed a reply: nothing sent
    await bus.finish_poll()
    assert len(got) == 1


async def test_an_unlock_during_a_poll_in_flight_reads_its_reply_first(line: Line) -> None:
    handle, _bus, boards = line
    got: list[Result] = []
    assert boards[1].poll_later(got.append)
    await boards[2].pulse(0, 300)  # at once: the poll's reply is still on the wire
    assert got == [BoardSnapshot((DoorState.CLOSED,) * 4)]
    frames = [f for _, f in handle.bus("b0").rx_frames]
    assert [f[:2] for f in frames] == [bytes([1, 2]), bytes([2, 5])]  # the poll, then the unlock
    assert handle.bus("b0").collisions == 0
    assert handle.slave("b0").bad_frames == 0
    assert handle.board("b0", 2).pulse_counts() == [1, 0, 0, 0]


async def test_a_garbled_reply_read_later_marks_the_line_dirty(line: Line) -> None:
    handle, bus, boards = line
    handle.faults.corrupt_crc("b0", 1)
    got: list[Result] = []
    assert boards[1].poll_later(got.append)
    await asyncio.sleep(0.02)
    assert not bus.harvest()  # a bad frame is no reply: wait for a good one up to the timeout
    await bus.finish_poll()
    assert len(got) == 1
    assert isinstance(got[0], FrameError)
    settles = bus.scheduler.settles
    snap = await boards[1].read()  # the line is settled first, then read cleanly
    assert bus.scheduler.settles == settles + 1
    assert snap.doors == (DoorState.CLOSED,) * 4


async def test_a_lost_reply_read_later_times_out_and_marks_the_line_dirty(line: Line) -> None:
    handle, bus, boards = line
    handle.faults.no_reply("b0", 1)
    got: list[Result] = []
    assert boards[1].poll_later(got.append)
    settles = bus.scheduler.settles
    await boards[2].pulse(1, 300)  # waits out the lost reply, settles, then unlocks
    assert len(got) == 1
    assert isinstance(got[0], DriverTimeout)
    assert bus.scheduler.settles == settles + 1
    assert handle.board("b0", 2).pulse_counts() == [0, 1, 0, 0]
    assert bus.timeouts == 1


async def test_a_forced_door_shows_in_the_next_reply_read_later(line: Line) -> None:
    handle, bus, boards = line
    got: list[Result] = []
    handle.faults.force_open("b0", 2, 3, handle.now())
    handle.wake()
    await asyncio.sleep(0.01)
    assert boards[2].poll_later(got.append)
    await bus.finish_poll()
    assert got == [BoardSnapshot((DoorState.CLOSED,) * 3 + (DoorState.OPEN,))]


ops = st.lists(st.one_of(st.tuples(st.just("open"), st.integers(1, 2), st.integers(0, 3)),
                         st.tuples(st.just("poll"), st.integers(1, 2), st.just(0)),
                         st.tuples(st.just("later"), st.integers(1, 2), st.just(0))),
               min_size=1, max_size=20)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, seed=st.integers(0, 1000))
def test_polls_read_later_never_mix_with_other_exchanges(ops: list[tuple[str, int, int]],
                                                         seed: int) -> None:
    async def scenario() -> None:
        handle = sim.start_for_config(_hw(2), close_after_s=None)
        bus = ModbusBus("b0", handle.port("b0"), baudrate=BAUD, read_timeout_s=0.1,
                        write_timeout_s=0.1)
        try:
            await bus.open()
            boards = {a: WaveshareBoard(bus, a, 4) for a in (1, 2)}
            rnd = random.Random(seed)
            got: list[Result] = []
            sent = 0

            async def one(op: tuple[str, int, int]) -> None:
                nonlocal sent
                await asyncio.sleep(rnd.random() * 0.01)
                if op[0] == "open":
                    await boards[op[1]].pulse(op[2], 300)
                elif op[0] == "poll":
                    assert DoorState.UNKNOWN not in (await boards[op[1]].read()).doors
                elif boards[op[1]].poll_later(got.append):
                    sent += 1
                    if rnd.random() < 0.5:
                        await asyncio.sleep(0.005)
                        if not bus.harvest():
                            await bus.finish_poll()

            await asyncio.gather(*(one(op) for op in ops))
            await bus.finish_poll()
            assert len(got) == sent  # every poll sent was read and delivered exactly once
            assert all(isinstance(r, BoardSnapshot) for r in got)
            expected = [[sum(1 for op in ops if op == ("open", a, ch)) for ch in range(4)]
                        for a in (1, 2)]
            assert [handle.board("b0", a).pulse_counts() for a in (1, 2)] == expected
            assert handle.bus("b0").collisions == 0
            assert handle.slave("b0").bad_frames == 0
            assert len(handle.bus("b0").rx_frames) == len(ops) - (
                sum(1 for op in ops if op[0] == "later") - sent)
        finally:
            bus.close()
            handle.close()

    asyncio.run(scenario())
