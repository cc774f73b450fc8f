"""Which asyncio event loop `lockerd run` (and the benches measuring it) runs on: one place.

uvloop when it is installed (a runtime dependency): a cabinet at rest is a loop waking up some
25 times a second for door polls, and on a small machine each wake-up costs about as much as
the poll's own work; uvloop's wake-ups cost about 30 % less CPU than asyncio's own loop here
(bench/poll_cpu.py prints both floors). `LOCKERD_EVENT_LOOP=asyncio` selects the standard
loop (to compare, or to rule the loop out when chasing a fault). In-process tests keep the
standard loop (pytest-asyncio's); the tests that start `lockerd run` run it on this choice.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "LOCKERD_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's default (uvloop missing or not wanted)."""
    if os.environ.get(ENV, "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """What `run()` runs on, for the start-up log line and the benches."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
