"""The adaptive poll rate: a board with a moving door is polled fast, an idle one at the idle
rate, and doors with a GPIO switch never make their board poll (a board whose every door has
one is read only to know that it answers). Counted with the controller's own poll counters
over a fixed window, with generous margins: behaviour, not timing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import pytest

from lockerd.app.events import EventBus
from lockerd.config import Compartment, Doors, Size
from lockerd.doors.controller import DoorController
from lockerd.doors.events import Outcome
from lockerd.drivers.base import DoorState
from tests.fixtures.door_rig import GivenBoards

CFG = Doors(open_confirm_s=1.0, poll_moving_ms=20, poll_idle_ms=250, poll_fast_hold_s=30,
            poll_switched_ms=2000, pulse_ms=300, left_open_prompt_s=50, left_open_alert_s=60,
            left_open_incident_s=70)
CHANNELS = 4


async def _counts_over(ctl: DoorController, seconds: float) -> dict[int, int]:
    before = ctl.poll_counts()
    await asyncio.sleep(seconds)
    return {a: n - before[a] for a, n in ctl.poll_counts().items()}


@pytest.fixture
async def cabinet(make_rig: Any) -> AsyncIterator[Callable[..., Any]]:
    running: list[tuple[DoorController, asyncio.Task[None]]] = []

    async def build(switched: Collection[int] = (), cfg: Doors = CFG) -> DoorController:
        rig = await make_rig(boards=2, channels=CHANNELS, close_after_s=None)
        comps = [Compartment(id=(a - 1) * CHANNELS + ch + 1, size=Size.S, board=a, channel=ch)
                 for a in (1, 2) for ch in range(CHANNELS)]
        ctl = DoorController(cfg, comps, EventBus(), GivenBoards(rig.boards),
                             door_switches=switched)
        await ctl.start()
        running.append((ctl, asyncio.create_task(ctl.run())))
        async with asyncio.timeout(10):
            while any(ctl.state(c.id) is DoorState.UNKNOWN  # noqa: ASYNC110 - sim thread
                      for c in comps if c.id not in switched):
                await asyncio.sleep(0.02)
        return ctl

    yield build
    for ctl, task in running:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctl.stop()


async def test_a_board_with_a_recently_opened_door_is_polled_faster(cabinet: Any) -> None:
    ctl = await cabinet()
    assert (await ctl.open(2, "test", "tester")).outcome is Outcome.OPENED  # board 1
    counts = await _counts_over(ctl, 1.0)
    # about 1 s / 20 ms (less the line time) against 1 s / 250 ms = 4
    assert counts[2] <= 8
    assert counts[1] >= 3 * max(counts[2], 1)


async def test_both_boards_at_rest_are_polled_at_the_idle_rate(cabinet: Any) -> None:
    ctl = await cabinet()
    counts = await _counts_over(ctl, 1.0)
    assert all(1 <= n <= 8 for n in counts.values()), counts


async def test_the_fast_rate_ends_after_the_hold(cabinet: Any) -> None:
    ctl = await cabinet(cfg=CFG.model_copy(update={"poll_fast_hold_s": 0.2}))
    assert (await ctl.open(2, "test", "tester")).outcome is Outcome.OPENED
    await asyncio.sleep(0.5)  # the door stays open (the sim does not close it); nothing moves
    counts = await _counts_over(ctl, 1.0)
    assert counts[1] <= 8, counts


async def test_gpio_switched_doors_do_not_make_their_board_poll(cabinet: Any) -> None:
    board2 = range(CHANNELS + 1, 2 * CHANNELS + 1)
    ctl = await cabinet(switched=[*board2, 1])
    ctl.door_switch(1, is_open=False)
    for cid in board2:
        ctl.door_switch(cid, is_open=False)
    await asyncio.sleep(0.1)
    ctl.door_switch(CHANNELS + 1, is_open=True)  # a switched door moves on board 2
    ctl.door_switch(1, is_open=True)  # and one on board 1
    counts = await _counts_over(ctl, 1.0)
    assert counts[2] <= 1, counts  # liveness only: every 2 s
    assert counts[1] <= 8, counts  # its moving door reports itself: board 1 stays idle


async def test_idle_boards_cost_one_loop_wake_up_and_one_port_read_per_poll(make_rig: Any) -> None:
    """Eight idle boards on one bus: their bus round polls them, each reply read with one
    non-blocking read at the next slot; the loop wakes about once per poll (it woke three
    times: the board's timer, the reply, the task)."""
    rig = await make_rig(boards=8, channels=CHANNELS, close_after_s=None)
    comps = [Compartment(id=(a - 1) * CHANNELS + ch + 1, size=Size.S, board=a, channel=ch)
             for a in range(1, 9) for ch in range(CHANNELS)]
    cfg = CFG.model_copy(update={"poll_idle_ms": 200})
    ctl = DoorController(cfg, comps, EventBus(), GivenBoards(rig.boards))
    await ctl.start()
    task = asyncio.create_task(ctl.run())
    try:
        async with asyncio.timeout(10):
            while not all(b.later for b in ctl._boards.values()):  # noqa: ASYNC110 - sim thread
                await asyncio.sleep(0.05)
        selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
        select, wakes = selector.select, 0

        def counted(timeout: float | None = None) -> Any:
            nonlocal wakes
            wakes += 1
            return select(timeout)

        polls = rig.bus.polls
        before = (sum(ctl.poll_counts().values()), polls.sent_later, polls.harvested,
                  polls.port_reads)
        selector.select = counted
        try:
            await asyncio.sleep(1.0)
        finally:
            selector.select = select
        made, sent, harvested, reads = (
            b - a for a, b in zip(before, (sum(ctl.poll_counts().values()), polls.sent_later,
                                           polls.harvested, polls.port_reads), strict=True))
        assert made >= 20, made  # 8 boards every 200 ms: about 40
        # A reply the (busy) simulator has not sent by the next slot is waited for the usual
        # way, and a slot that finds the line busy reads its board inside a transaction: rare.
        assert sent >= 0.75 * made, (sent, made)
        assert harvested >= 0.75 * sent, (harvested, sent)
        assert reads <= harvested + 2 * (sent - harvested) + 2  # one read per reply read later
        assert wakes <= 2 * made, (wakes, made)  # it was about three
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ctl.stop()
