"""One shared beat for the daemon's once-a-second housekeeping loops.

Each wake-up of an idle event loop costs more CPU than the work it does on this class of
machine (a bare timer wake-up: ~0.35 ms here, caches cold after every sleep; issue 19). The
daemon's slow loops (cabinet state for systemd, the log's purge and integrity schedule, the
camera's silence check, GPIO progress) each slept one second from wherever they happened to
start, so an idle cabinet woke four times a second for them. Sleeping to the next multiple of
the period on the loop's own clock lines them up: their timers fall due together and one
wake-up of the loop runs them all.
"""

from __future__ import annotations

import asyncio
import math


async def next_tick(period: float) -> None:
    """Sleep until the loop's clock next reaches a whole multiple of `period` seconds (at least
    a tenth of a period from now, so a loop that ran late does not spin)."""
    loop = asyncio.get_running_loop()
    now = loop.time()
    due = math.ceil((now + period / 10) / period) * period
    await asyncio.sleep(due - now)
