"""Door-open latency through the full path: API socket -> controller -> driver -> pty -> sim relay.

Prints p50/p99 from request sent (stamped right before the API write) to relay energised in
the simulator (stamped by the sim thread when it acts on the frame, i.e. at the emulated frame
end + t3.5) at 9600 and 115200 baud, next to the wire-time limit (request frame + t3.5 at the
slave). At rest: the previous door closed more than 1.1 s ago and the board is polled at the
idle rate; busy bus: the previous door has just closed and its board is polled at the fast
rate. In both, the request lands at a random moment of the poll cycle (seeded), as a real
request would, rather than at a fixed phase. Each mode also splits the samples into those
that found the line free and those that had to wait for a frame already on the wire (a poll
must finish; frames never interleave). Then 20 concurrent opens on a 4-board bus against
the sum of their wire times. Run: .venv/bin/python bench/door_latency.py [samples]
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lockerd.api.server import ApiServer
from lockerd.app.events import EventBus
from lockerd.config import Api, Board, Compartment, Doors, Hardware, SerialPort, Size
from lockerd.doors.api import DoorsApi
from lockerd.doors.controller import DoorController
from lockerd.drivers.bus import char_time, frame_gap
from lockerd.drivers.factory import ConfiguredBoards
from lockerd.drivers.lockboard_8a import UNLOCK_REPLY_S as RAW_8A_REPLY_S
from lockerd.drivers.profiles import PROFILES, LineKind

PULSE_FRAME = 8
ECHO_FRAME = 8
POLL_MOVING_MS = 50
POLL_IDLE_MS = 500
# Issue 8: the raw-frame profiles, each at its native baud rate (from the registry), and their frame sizes.
RAW_PROFILES = {p.name: p.native_baud for p in PROFILES.values() if p.line is LineKind.RAW}
FRAMES = {"modbus-waveshare": (PULSE_FRAME, ECHO_FRAME), "kerong-cu16": (5, 5), "rs485-8a": (5, 5)}


async def _rig(baud: int, boards: int, channels: int, sock: Path,
               profile: str = "modbus-waveshare", close_after_s: float = 0.15) -> tuple[
        DoorController, ApiServer, asyncio.Task[None]]:
    hw = Hardware(backend="sim", buses=[SerialPort(baudrate=baud)],
                  boards=[Board(address=a, channels=channels, profile=profile)
                          for a in range(1, boards + 1)])
    comps = [Compartment(id=(a - 1) * channels + ch + 1, size=Size.S, board=a, channel=ch)
             for a in range(1, boards + 1) for ch in range(channels)]
    cfg = Doors(poll_moving_ms=POLL_MOVING_MS, poll_idle_ms=POLL_IDLE_MS)
    ctl = DoorController(cfg, comps, EventBus(),
                         ConfiguredBoards(hw, sim_close_after_s=close_after_s))
    api = ApiServer(Api(), sock)
    DoorsApi(ctl).register(api)
    await api.start()
    await ctl.start()
    task = asyncio.create_task(ctl.run())
    await asyncio.sleep(1.0)
    return ctl, api, task


async def _call(sock: Path, method: str, params: dict[str, object]) -> dict[str, object]:
    reader, writer = await asyncio.open_unix_connection(str(sock))
    writer.write(json.dumps({"id": 1, "method": method, "params": params}).encode() + b"\n")
    await writer.drain()
    reply: dict[str, object] = json.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return reply


async def _open_and_time(ctl: DoorController, sock: Path, cid: int) -> tuple[float, bool]:
    """Latency of one open, and whether the line was free when it was requested."""
    assert ctl.board_set is not None
    assert ctl.board_set.sim is not None
    slave: Any = ctl.board_set.sim.bus("bus0").frontend  # every profile keeps a pulse_log
    sim_bus = ctl.board_set.sim.bus("bus0")
    before = len(slave.pulse_log)
    reader, writer = await asyncio.open_unix_connection(str(sock))
    line = json.dumps({"id": 1, "method": "doors.open",
                       "params": {"compartment": cid, "reason": "bench"}}).encode() + b"\n"
    t0 = time.monotonic()
    writer.write(line)
    await writer.drain()
    reply = json.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    assert reply["ok"], reply
    t_relay: float = slave.pulse_log[before][0]
    # Busy: another frame was acted on or answered by the sim between request and relay, or
    # the last reply ended less than t3.5 before the request (the gap must still be kept).
    gap = frame_gap(sim_bus.baudrate)
    frames = list(sim_bus.rx_frames) + list(sim_bus.tx_frames)
    free = not any(t0 - gap < t < t_relay for t, _ in frames)
    return t_relay - t0, free


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def latency(baud: int, samples: int, *, idle: bool, rng: random.Random,
                  profile: str = "modbus-waveshare") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "api.sock"
        ctl, api, task = await _rig(baud, 2, 8, sock, profile)
        try:
            lat: list[float] = []
            free: list[float] = []
            prev: int | None = None
            for i in range(samples):
                cid = i % 16 + 1
                if prev is not None:
                    await ctl.wait_closed(prev, 5.0)
                if idle:
                    # cabinet at rest: idle polling, no door moving; a random phase of it
                    await asyncio.sleep(1.1 + rng.uniform(0, POLL_IDLE_MS / 1000))
                else:
                    # a door just closed: fast polling; a random phase of one fast cycle
                    await asyncio.sleep(rng.uniform(0, 1.5 * POLL_MOVING_MS / 1000))
                latency_s, line_free = await _open_and_time(ctl, sock, cid)
                lat.append(latency_s)
                if line_free:
                    free.append(latency_s)
                prev = cid
            limit = FRAMES[profile][0] * char_time(baud) + frame_gap(baud)
            p50, p99 = statistics.median(lat), _pct(lat, 99)
            mode = "at rest " if idle else "busy bus"
            print(f"{profile:<16} {baud:>6} baud  {mode} n={samples}  p50={p50 * 1000:6.2f} ms"
                  f"  p99={p99 * 1000:6.2f} ms"
                  f"  wire limit={limit * 1000:5.2f} ms  p50/limit={p50 / limit:4.2f}"
                  f"  p99/limit={p99 / limit:4.2f}")
            if free:
                f50, f99 = statistics.median(free), _pct(free, 99)
                print(f"{'':>6}       line free n={len(free):<3} p50={f50 * 1000:6.2f} ms"
                      f"  p99={f99 * 1000:6.2f} ms  p99/limit={f99 / limit:4.2f};"
                      f"  {samples - len(free)} waited for a frame already on the wire")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await ctl.stop()
            await api.stop()


async def concurrent(baud: int, n: int, profile: str = "modbus-waveshare") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sock = Path(tmp) / "api.sock"
        # An 0x8A board holds the bus ~500 ms per open, so 20 opens take ~10 s and no poll runs
        # meanwhile: the simulated people keep those doors open instead of closing in 0.15 s.
        ctl, api, task = await _rig(baud, 4, 5, sock, profile,
                                    close_after_s=30.0 if profile == "rs485-8a" else 0.15)
        try:
            assert ctl.board_set is not None
            assert ctl.board_set.sim is not None
            slave: Any = ctl.board_set.sim.bus("bus0").frontend
            before = len(slave.pulse_log)
            t0 = time.monotonic()
            replies = await asyncio.gather(*(_call(sock, "doors.open",
                                                   {"compartment": c, "reason": "bench"})
                                             for c in range(1, n + 1)))
            relays = slave.pulse_log[before:]
            assert all(r["ok"] for r in replies), replies
            assert sorted((u, ch) for _, u, ch in relays) == sorted(
                ((c - 1) // 5 + 1, (c - 1) % 5) for c in range(1, n + 1))
            last = max(t for t, _, _ in relays) - t0
            pulse_frame, echo_frame = FRAMES[profile]
            wire = n * ((pulse_frame + echo_frame) * char_time(baud) + 2 * frame_gap(baud)
                        + (RAW_8A_REPLY_S if profile == "rs485-8a" else 0.0))
            print(f"{profile:<16} {baud:>6} baud  {n} doors at once on a 4-board bus: "
                  f"all relays energised after "
                  f"{last * 1000:.1f} ms; sum of wire times {wire * 1000:.1f} ms; "
                  f"ratio {last / wire:.2f}")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await ctl.stop()
            await api.stop()


async def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    rng = random.Random(3)
    print("door open latency: request on the API socket -> relay energised in the sim")
    for idle in (True, False):
        for baud in (9600, 115200):
            await latency(baud, samples, idle=idle, rng=rng)
    for baud in (9600, 115200):
        await concurrent(baud, 20)
    for profile, baud in RAW_PROFILES.items():
        for idle in (True, False):
            await latency(baud, samples, idle=idle, rng=rng, profile=profile)
        await concurrent(baud, 20, profile)


if __name__ == "__main__":
    asyncio.run(main())
