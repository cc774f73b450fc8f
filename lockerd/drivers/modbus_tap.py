"""A switch between pymodbus's serial transport and its protocol, so raw frames can share the port.

The Modbus bus keeps one pyserial port, opened by pymodbus. Relay writes and configuration
go through pymodbus; the door poll (FC02, drivers/frames_modbus.py) is sent and read raw, for
a fraction of the CPU. Received bytes reach pymodbus only while it runs an exchange; at any
other time they land in `buf` (the raw exchange's reply, or stray bytes that the next raw
exchange counts and drops), so pymodbus's framer never hunts through a raw reply or noise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class RawTap(asyncio.Protocol):
    """Installed as the transport's protocol; forwards to pymodbus's own protocol while `to_inner`."""

    def __init__(self, inner: Any, on_rx: Callable[[bytes], object]) -> None:
        self.inner = inner
        self._on_rx = on_rx
        self.buf = bytearray()
        self.to_inner = False
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False

    def data_received(self, data: bytes) -> None:
        """Bytes from the port: to pymodbus during its exchange, else to the raw buffer."""
        if self.to_inner:
            self.inner.data_received(data)
            return
        self._on_rx(data)
        self.buf += data
        self._wake()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Pass on (pymodbus keeps the transport)."""
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """The port failed or closed: pymodbus must know, and a raw exchange must stop waiting."""
        self.lost = True
        self._wake()
        self.inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        """Pass on."""
        result: bool | None = self.inner.eof_received()
        return result

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
