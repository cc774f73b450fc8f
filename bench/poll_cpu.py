"""Benchmark: CPU of door polling at rest, per poll and per wall-second, on the simulator in its own process.

The door controller polls every board at the idle rate (`[doors] poll_idle_ms`, 500 ms) over
the real driver stack (bus scheduler, pymodbus, pty); the simulator's boards answer from a
child process, so the figures are the controller's alone. Cabinets of eight-channel boards on
one 9600-baud bus: 16 doors (2 boards), 96 doors (12 boards) and 192 doors (24 boards, the bus
nearly always busy, so every exchange first waits out the inter-frame gap). Printed:
CPU-seconds per wall-second (% of one core), polls per second, and CPU per poll (all CPU of
this process divided by the polls made). Targets (issue 19): CPU per Modbus poll <= 0.3 ms;
idle CPU <= 1 % of a core for 96 doors without the camera (a target for the whole daemon;
this is its polling part).

Also printed, as the floor a poll stands on: the CPU of one bare timer wake-up (twelve tasks
sleeping the idle period in turn, doing nothing; and a chain of timer callbacks, which is how
the bus round of doors/bus_round.py waits), measured in the same run. An idle poll needs one
wake-up (its bus round's slot: the last reply is read, the next request sent); on a machine
whose caches other processes keep cold, that floor alone can be most of the 0.3 ms.

Runs on the daemon's event loop (lockerd/app/eventloop.py: uvloop when installed;
`LOCKERD_EVENT_LOOP=asyncio` for asyncio's own, to compare).

Usage: python bench/poll_cpu.py [--seconds 20] [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lockerd.app import eventloop
from lockerd.app.events import EventBus
from lockerd.config import Board, Compartment, Doors, Hardware, SerialPort, Size
from lockerd.doors.controller import DoorController
from lockerd.drivers.factory import ConfiguredBoards

BAUD = 9600
CHANNELS = 8
TARGET_PER_POLL_MS = 0.3
TARGET_IDLE_PCT = 1.0


def _hardware(boards: int, backend: str, port: str = "/dev/null") -> Hardware:
    return Hardware(backend=backend, buses=[SerialPort(name="bus0", port=port, baudrate=BAUD)],
                    boards=[Board(address=a, channels=CHANNELS, profile="modbus-waveshare")
                            for a in range(1, boards + 1)])


def sim_child(boards: int) -> None:
    """Run the simulated boards until stdin closes; print the bus's pty path."""
    from lockerd import sim

    handle = sim.start_for_config(_hardware(boards, "sim"), close_after_s=3.0)
    try:
        print(json.dumps({"port": handle.port("bus0")}), flush=True)
        sys.stdin.read()
    finally:
        handle.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(boards: int, seconds: float, profile: cProfile.Profile | None
                  ) -> tuple[float, float, float]:
    """(CPU % of a core, polls per second, CPU ms per poll) of the controller at rest."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sim", str(boards), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        port = json.loads(await child.stdout.readline())["port"]
        comps = [Compartment(id=(a - 1) * CHANNELS + ch + 1, size=Size.S, board=a, channel=ch)
                 for a in range(1, boards + 1) for ch in range(CHANNELS)]
        ctl = DoorController(Doors(), comps, EventBus(),
                             ConfiguredBoards(_hardware(boards, "real", port)))
        await ctl.start()
        task = asyncio.create_task(ctl.run())
        try:
            await asyncio.sleep(3.0)  # every board answered, loops at the idle rate
            assert ctl.board_set is not None
            buses = list(ctl.board_set.buses.values())
            polls0 = sum(b.scheduler.transactions for b in buses)
            cpu0, t0 = _cpu(), time.monotonic()
            if profile is not None:
                profile.enable()
            await asyncio.sleep(seconds)
            if profile is not None:
                profile.disable()
            cpu, wall = _cpu() - cpu0, time.monotonic() - t0
            polls = sum(b.scheduler.transactions for b in buses) - polls0
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await ctl.stop()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        await asyncio.wait_for(child.wait(), 10)
    return 100 * cpu / wall, polls / wall, 1000 * cpu / max(1, polls)


async def bare_wakeup_ms(seconds: float, tasks: int = 12, period: float = 0.5) -> float:
    """CPU ms of one asyncio timer wake-up that does nothing (the floor under every poll)."""
    wakes = 0

    async def sleeper(i: int) -> None:
        nonlocal wakes
        await asyncio.sleep(period * i / tasks)
        while True:
            wakes += 1
            await asyncio.sleep(period)

    sleepers = [asyncio.create_task(sleeper(i)) for i in range(tasks)]
    await asyncio.sleep(period)
    cpu0, wakes0 = _cpu(), wakes
    await asyncio.sleep(seconds)
    cpu, n = _cpu() - cpu0, wakes - wakes0
    for t in sleepers:
        t.cancel()
    await asyncio.gather(*sleepers, return_exceptions=True)
    return 1000 * cpu / max(1, n)


async def callback_wakeup_ms(seconds: float, period: float = 0.5 / 12) -> float:
    """CPU ms of one timer-callback wake-up that does nothing (a bus round's slot, bare)."""
    loop = asyncio.get_running_loop()
    wakes = 0

    def tick() -> None:
        nonlocal wakes
        wakes += 1
        handle[0] = loop.call_later(period, tick)

    handle = [loop.call_later(period, tick)]
    await asyncio.sleep(0.5)
    cpu0, wakes0 = _cpu(), wakes
    await asyncio.sleep(seconds)
    cpu, n = _cpu() - cpu0, wakes - wakes0
    handle[0].cancel()
    return 1000 * cpu / max(1, n)


def _fmt(values: list[float], digits: int) -> str:
    return (f"{statistics.median(values):.{digits}f} "
            f"({min(values):.{digits}f}-{max(values):.{digits}f})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="print where the CPU goes (cProfile of the 96-door windows)")
    parser.add_argument("--sim", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sim:
        sim_child(args.sim)
        return
    prof = cProfile.Profile(time.process_time) if args.profile else None
    print(f"door polling at rest, Modbus (modbus-waveshare) at {BAUD} baud, poll_idle_ms "
          f"{Doors().poll_idle_ms}, simulator in its own process, {eventloop.loop_name()} event "
          f"loop; median (min-max) of {args.rounds} rounds x {args.seconds:g} s")
    for boards in (2, 12, 24):
        runs = [await measure(boards, args.seconds, prof if boards == 12 else None)
                for _ in range(args.rounds)]
        pct, rate, per_poll = ([r[i] for r in runs] for i in range(3))
        print(f"{boards * CHANNELS:>3} doors ({boards:>2} boards): CPU {_fmt(pct, 2)} % of a core, "
              f"{_fmt(rate, 1)} polls/s, {_fmt(per_poll, 3)} ms CPU per poll "
              f"(target <= {TARGET_PER_POLL_MS} ms: "
              f"{'met' if statistics.median(per_poll) <= TARGET_PER_POLL_MS else 'NOT met'})")
        if boards == 12:
            med = statistics.median(pct)
            print(f"target: idle CPU <= {TARGET_IDLE_PCT:g} % of a core for 96 doors (whole "
                  f"daemon without camera; polling alone here): {med:.2f} % "
                  f"({'met' if med <= TARGET_IDLE_PCT else 'NOT met'})")
    floor = [await bare_wakeup_ms(min(args.seconds, 10.0)) for _ in range(args.rounds)]
    chain = [await callback_wakeup_ms(min(args.seconds, 10.0)) for _ in range(args.rounds)]
    print(f"floor: one bare timer wake-up costs {_fmt(floor, 3)} ms CPU here for a sleeping "
          f"task, {_fmt(chain, 3)} ms for a timer callback (an idle poll needs one)")
    if prof is not None:
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    eventloop.run(main())
