"""`lockerd demo --kiosk`: the demo cabinet on the simulator with the kiosk, to click through in a browser.

The daemon runs on simulated boards in a temporary directory; a demo courier is granted and two
parcels are deposited, so a newcomer can pick one up, refuse one, log in as the courier and
deliver, send a parcel, and watch the simulated person close each door after a few seconds.
The credentials and codes printed are demo values of this throwaway cabinet, nobody's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from lockerd.api.client import AsyncApiClient
from lockerd.app.daemon import Daemon
from lockerd.demo.day import demo_config
from lockerd.demo.flows import PIN_A, carrier_command, pickup_code
from lockerd.domain.timefmt import format_ts
from lockerd.kiosk.app import KioskSettings
from lockerd.kiosk.serve import serving

#: The simulated person shuts a door this long after it opens (time to press "refuse").
DOOR_CLOSES_AFTER_S = 8.0
DEMO_PARCELS = ("SF1402938475", "SF1402938476")


async def _wait_ready(daemon: Daemon, task: asyncio.Task[int], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    # the socket appears last, once every component is built and started; then the camera
    # needs a moment to learn the scene before intake opens
    while not (daemon.cfg.paths.socket.exists()
               and (daemon.camera is None or daemon.camera.is_open())):
        if task.done():
            raise RuntimeError(f"the demo daemon exited ({task.result()})")
        if time.monotonic() > deadline:
            raise TimeoutError("the demo daemon did not come up")
        await asyncio.sleep(0.1)


def _doors_close_after(daemon: Daemon, seconds: float) -> None:
    board_set = daemon.doors.board_set
    if board_set is None or board_set.sim is None:
        return
    for board in daemon.cfg.hardware.boards:
        model = board_set.sim.board(board.bus, board.address)
        for channel in range(board.channels):
            model.set_close_after(channel, seconds)


async def _stock(daemon: Daemon, out: TextIO) -> None:
    """The demo courier and two parcels waiting for their recipients."""
    from datetime import UTC, datetime, timedelta

    expires = format_ts(datetime.now(UTC) + timedelta(days=1))
    await carrier_command(daemon, "sf", "courier.grant",
                          {"courier_id": "c-101", "pin": PIN_A, "expires": expires})
    print(f"demo courier: carrier sf (顺丰速运), courier id c-101, PIN {PIN_A}", file=out)
    async with AsyncApiClient(daemon.cfg.paths.socket) as api:
        for waybill in DEMO_PARCELS:
            res = await api.call("panel.deliver", {
                "panel": "demo-stock", "carrier": "sf", "courier_id": "c-101", "pin": PIN_A,
                "parcel": {"waybill": waybill, "size": "S", "consent": True}})
            code = await pickup_code(daemon, res["parcel_id"])
            print(f"demo parcel in door {res['compartment']}: pickup code {code}", file=out)


async def kiosk_demo(workdir: Path, port: int, out: TextIO, stop: asyncio.Event) -> None:
    """Run the demo cabinet and its kiosk until `stop` is set."""
    daemon = Daemon(demo_config(workdir))
    task = asyncio.create_task(daemon.run(), name="daemon")
    try:
        await _wait_ready(daemon, task)
        # the daemon took SIGINT and SIGTERM for itself: they end the whole demo instead
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        _doors_close_after(daemon, 0.8)
        await _stock(daemon, out)
        _doors_close_after(daemon, DOOR_CLOSES_AFTER_S)
        async with serving(KioskSettings(socket=daemon.cfg.paths.socket, port=port)) as kiosk:
            print(f"kiosk: http://127.0.0.1:{kiosk.port}/  (Ctrl-C ends the demo)", file=out,
                  flush=True)
            await stop.wait()
    finally:
        daemon.request_stop()
        await task


def run_kiosk_demo(port: int = 8080, *, keep: bool = False) -> int:
    """Entry point of `lockerd demo --kiosk`."""
    workdir = Path(tempfile.mkdtemp(prefix="lockerd-demo-"))

    async def main() -> None:
        await kiosk_demo(workdir, port, sys.stdout, asyncio.Event())

    try:
        asyncio.run(main())
    finally:
        if keep:
            print(f"state kept in {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)
    print("demo finished")
    return 0
