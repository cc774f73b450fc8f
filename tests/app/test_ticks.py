"""The shared housekeeping beat: slow loops started at different moments wake together."""

from __future__ import annotations

import asyncio

from lockerd.app.ticks import next_tick


async def test_loops_started_apart_wake_on_the_same_beat() -> None:
    loop = asyncio.get_running_loop()
    seen: dict[float, list[int]] = {}

    async def housekeeping(start: float) -> None:
        await asyncio.sleep(start)
        for _ in range(3):
            await next_tick(0.2)
            seen.setdefault(start, []).append(round(loop.time() / 0.2))

    await next_tick(0.2)  # the three start within one beat of each other
    await asyncio.gather(*(housekeeping(s) for s in (0.0, 0.05, 0.1)))
    beats = list(seen.values())
    assert beats[0] == beats[1] == beats[2], seen  # one wake-up serves all three
    assert beats[0] == list(range(beats[0][0], beats[0][0] + 3))  # one beat apart


async def test_a_late_loop_does_not_spin() -> None:
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await next_tick(0.2)
    await next_tick(0.2)
    assert loop.time() - t0 >= 0.2 * 0.9  # two calls never return within the same beat
