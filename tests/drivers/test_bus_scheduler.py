"""BusScheduler ordering: unlocks overtake polls that hold the line but have not sent yet."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest
from pymodbus.pdu.bit_message import ReadDiscreteInputsRequest

from lockerd.drivers.bus import BusScheduler, Priority
from lockerd.drivers.lockboard_modbus import ModbusBus


class QuietLine:
    """A line whose settle takes a while (as after a timeout) and records when it ran."""

    def __init__(self) -> None:
        self.settles = 0

    async def settle(self) -> None:
        """Wait a little, as a real quiet period does."""
        self.settles += 1
        await asyncio.sleep(0.02)


async def _exchange(sched: BusScheduler, prio: Priority, name: str, log: list[str],
                    hold_s: float = 0.005) -> None:
    async with sched.transaction(prio):
        log.append(f"start {name}")
        await asyncio.sleep(hold_s)
        log.append(f"end {name}")


async def test_unlock_queued_during_a_polls_settle_goes_first() -> None:
    line = QuietLine()
    sched = BusScheduler("t", line, gap_s=0.004)
    sched.mark_dirty()
    log: list[str] = []
    poll = asyncio.create_task(_exchange(sched, Priority.POLL, "poll", log))
    await asyncio.sleep(0.005)  # the poll holds the line and is settling it
    unlock = asyncio.create_task(_exchange(sched, Priority.UNLOCK, "unlock", log))
    await asyncio.gather(poll, unlock)
    assert log == ["start unlock", "end unlock", "start poll", "end poll"]
    assert line.settles == 1
    assert sched.preemptions == 1
    assert sched.transactions == 2


async def test_an_exchange_on_the_wire_is_never_interrupted() -> None:
    sched = BusScheduler("t", QuietLine(), gap_s=0.001)
    log: list[str] = []
    poll = asyncio.create_task(_exchange(sched, Priority.POLL, "poll", log, hold_s=0.03))
    await asyncio.sleep(0.01)  # the poll's frame is out
    unlock = asyncio.create_task(_exchange(sched, Priority.UNLOCK, "unlock", log))
    await asyncio.gather(poll, unlock)
    assert log == ["start poll", "end poll", "start unlock", "end unlock"]
    assert sched.preemptions == 0


async def _timed(sched: BusScheduler, prio: Priority, name: str,
                 spans: dict[str, tuple[float, float]], hold_s: float = 0.002) -> None:
    async with sched.transaction(prio):
        start = time.monotonic()
        await asyncio.sleep(hold_s)
        spans[name] = (start, time.monotonic())  # before the scheduler notes the end


@pytest.mark.parametrize("other", [Priority.POLL, Priority.CONTROL, Priority.UNLOCK])
async def test_the_inter_frame_gap_is_kept_whatever_the_priority(other: Priority) -> None:
    gap = 0.004
    sched = BusScheduler("t", QuietLine(), gap_s=gap)
    spans: dict[str, tuple[float, float]] = {}
    for n in range(4):
        poll = asyncio.create_task(_timed(sched, Priority.POLL, f"poll{n}", spans))
        await asyncio.sleep(0)
        await asyncio.gather(poll, _timed(sched, other, f"other{n}", spans))
    ordered = sorted(spans.values())
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert start - end >= gap  # no overlap, and t3.5 of silence between exchanges


async def test_an_unlock_takes_the_line_from_a_poll_waiting_out_the_gap() -> None:
    gap = 0.2  # long enough that the unlock arrives while the poll waits
    sched = BusScheduler("t", QuietLine(), gap_s=gap)
    spans: dict[str, tuple[float, float]] = {}
    await _timed(sched, Priority.POLL, "first", spans)
    poll = asyncio.create_task(_timed(sched, Priority.POLL, "poll", spans))
    await asyncio.sleep(0.05)  # the poll holds the line, waiting out the gap
    await _timed(sched, Priority.UNLOCK, "unlock", spans)
    await poll
    assert spans["first"][1] + gap <= spans["unlock"][0] < spans["poll"][0]
    assert spans["poll"][0] - spans["unlock"][1] >= gap
    assert sched.preemptions == 1
    assert sched.queued == 0


async def test_cancelled_while_requeued_leaves_the_line_usable() -> None:
    sched = BusScheduler("t", QuietLine(), gap_s=0.004)
    sched.mark_dirty()
    log: list[str] = []
    poll = asyncio.create_task(_exchange(sched, Priority.POLL, "poll", log))
    await asyncio.sleep(0.005)
    unlock = asyncio.create_task(_exchange(sched, Priority.UNLOCK, "unlock", log, hold_s=0.03))
    await asyncio.sleep(0.03)  # the unlock has the line; the poll waits in the queue again
    poll.cancel()
    await asyncio.gather(poll, return_exceptions=True)
    await unlock
    await asyncio.wait_for(_exchange(sched, Priority.POLL, "later", log), 2.0)
    assert log == ["start unlock", "end unlock", "start later", "end later"]
    assert sched.queued == 0



async def test_a_cancellation_the_transport_swallowed_is_raised_after_the_exchange(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pymodbus's asyncio.wait_for (Python 3.11) may return a reply and drop a cancellation."""
    bus = ModbusBus("bus0", "/dev/null")
    request = ReadDiscreteInputsRequest(address=0, count=8, dev_id=1)

    async def swallowing_exchange(_request: object, _timeout_s: float) -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # what wait_for does when the reply is already there
        return "reply"

    monkeypatch.setattr(bus, "_exchange", swallowing_exchange)
    task = asyncio.create_task(bus.transact(Priority.POLL, request, timeout_s=0.1, attempts=2))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.scheduler.transactions == 1
    assert bus.scheduler.queued == 0  # the line was released
    bus.close()
