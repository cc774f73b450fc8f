"""`lockerd kiosk`: serve the screen on 127.0.0.1 until SIGTERM (the demo and tests run it in-process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web

from lockerd.kiosk.app import Kiosk, KioskSettings, build_app

log = logging.getLogger(__name__)

#: The only address the kiosk listens on: the screen's browser runs on the same machine.
HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def serving(settings: KioskSettings) -> AsyncIterator[Kiosk]:
    """Run the kiosk while the block runs; port 0 picks a free port (`kiosk.port` tells which)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, settings.port))
    port = sock.getsockname()[1]
    kiosk = Kiosk(replace(settings, port=port))
    # handler_cancellation: a page that goes away ends its event stream at once
    runner = web.AppRunner(build_app(kiosk), access_log=None, handle_signals=False,
                           shutdown_timeout=1.0, handler_cancellation=True)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        log.info("kiosk serving http://%s:%d/ for panel %s", HOST, port, settings.panel)
        yield kiosk
    finally:
        await runner.cleanup()
        sock.close()


async def run(settings: KioskSettings) -> int:
    """Serve until SIGTERM or SIGINT; 0 on a clean stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serving(settings) as kiosk:
        print(f"kiosk: http://{HOST}:{kiosk.port}/", flush=True)
        await stop.wait()
    return 0
