"""Bus-level safety against the pty sim: lost/late pulse replies never duplicate a pulse, random
interleavings of opens and polls never interleave frames or pulse a wrong channel, garbage on the
line never crashes the driver."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd import sim
from lockerd.config import Board, Hardware, SerialPort
from lockerd.drivers.base import DoorState
from lockerd.drivers.errors import DriverError
from lockerd.drivers.lockboard_modbus import ModbusBus, WaveshareBoard

FAST_BAUD = 921600


def _hw(buses: int, boards: int, channels: int = 4, baud: int = FAST_BAUD) -> Hardware:
    return Hardware(buses=[SerialPort(name=f"b{i}", baudrate=baud) for i in range(buses)],
                    boards=[Board(address=i * boards + a, bus=f"b{i}", channels=channels)
                            for i in range(buses) for a in range(1, boards + 1)])


@pytest.mark.slow
async def test_10000_lost_or_late_pulse_replies_never_duplicate_a_pulse() -> None:
    nbus, per_bus, channels = 8, 1250, 4
    handle = sim.start_for_config(_hw(nbus, 1, channels), close_after_s=0.05, seed=7)
    buses: list[ModbusBus] = []
    try:
        sent: dict[tuple[str, int], int] = {}
        acks = 0

        async def drive(i: int) -> None:
            nonlocal acks
            name = f"b{i}"
            bus = ModbusBus(name, handle.port(name), baudrate=FAST_BAUD, read_timeout_s=0.004,
                            write_timeout_s=0.004, quiet_s=0.002)
            buses.append(bus)
            await bus.open()
            # Half the replies dropped, the rest arrive after the driver gave up.
            handle.faults.configure(name, i + 1, drop_probability=0.5, late_probability=1.0,
                                    late_s=0.006)
            board = WaveshareBoard(bus, i + 1, channels)
            for n in range(per_bus):
                ch = n % channels
                sent[(name, ch)] = sent.get((name, ch), 0) + 1
                try:
                    await board.pulse(ch, 700)
                    acks += 1
                except DriverError:
                    pass

        await asyncio.gather(*(drive(i) for i in range(nbus)))
        await asyncio.sleep(0.05)
        total = 0
        for i in range(nbus):
            counts = handle.board(f"b{i}", i + 1).pulse_counts()
            bad = [f.hex() for _, f in handle.bus(f"b{i}").rx_frames if len(f) != 8]
            assert not bad, (i, bad, handle.slave(f"b{i}").bad_frames)
            assert counts == [sent[(f"b{i}", ch)] for ch in range(channels)]
            total += sum(counts)
        assert total == nbus * per_bus == 10_000
        assert acks < total // 10  # the faults really hit nearly every reply
    finally:
        for bus in buses:
            bus.close()
        handle.close()


ops = st.lists(st.one_of(
    st.tuples(st.just("open"), st.integers(1, 3), st.integers(0, 3)),
    st.tuples(st.just("poll"), st.integers(1, 3), st.just(0))), min_size=1, max_size=25)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, seed=st.integers(0, 1000))
def test_random_interleavings_never_mix_frames_or_pulse_wrong_channel(
        ops: list[tuple[str, int, int]], seed: int) -> None:
    async def scenario() -> None:
        handle = sim.start_for_config(_hw(1, 3, baud=115200), close_after_s=0.05)
        bus = ModbusBus("b0", handle.port("b0"), baudrate=115200, read_timeout_s=0.15,
                        write_timeout_s=0.2)
        try:
            await bus.open()
            boards = {a: WaveshareBoard(bus, a, 4) for a in (1, 2, 3)}
            rnd = random.Random(seed)

            async def one(op: tuple[str, int, int]) -> None:
                await asyncio.sleep(rnd.random() * 0.01)
                if op[0] == "open":
                    await boards[op[1]].pulse(op[2], 300)
                else:
                    snap = await boards[op[1]].read()
                    assert DoorState.UNKNOWN not in snap.doors

            await asyncio.gather(*(one(op) for op in ops))
            expected = {(a, ch): 0 for a in (1, 2, 3) for ch in range(4)}
            for op in ops:
                if op[0] == "open":
                    expected[(op[1], op[2])] += 1
            for a in (1, 2, 3):
                assert handle.board("b0", a).pulse_counts() == [expected[(a, ch)] for ch in range(4)]
            simbus = handle.bus("b0")
            assert simbus.collisions == 0
            assert handle.slave("b0").bad_frames == 0
            assert len(simbus.rx_frames) == len(ops)
        finally:
            bus.close()
            handle.close()

    asyncio.run(scenario())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noise=st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4))
def test_garbage_on_the_line_never_crashes_the_driver(noise: list[bytes]) -> None:
    async def scenario() -> None:
        handle = sim.start_for_config(_hw(1, 1, baud=115200), close_after_s=None)
        bus = ModbusBus("b0", handle.port("b0"), baudrate=115200, read_timeout_s=0.05,
                        write_timeout_s=0.05)
        try:
            await bus.open()
            board = WaveshareBoard(bus, 1, 4)
            for chunk in noise:
                handle.faults.inject_garbage("b0", chunk)
                handle.wake()
                try:
                    snap = await board.read()
                    assert len(snap.doors) == 4
                except DriverError:
                    pass
            await asyncio.sleep(0.01)
            snap = await board.read()  # the line recovers: a clean read after the noise
            assert snap.doors == (DoorState.CLOSED,) * 4
            assert sum(handle.board("b0", 1).pulse_counts()) == 0
        finally:
            bus.close()
            handle.close()

    asyncio.run(scenario())
