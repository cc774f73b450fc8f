"""Clients for the local API socket: blocking (lockerctl) and asyncio (demo, tests, bench)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
from pathlib import Path
from typing import Any


class ApiUnavailable(Exception):
    """The daemon's socket is not there or refused the connection."""


class ApiReplyError(Exception):
    """The daemon answered ok:false; `code` is the stable error code."""

    def __init__(self, code: str, message: str, reply: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


def _check(reply: dict[str, Any]) -> Any:
    if reply.get("ok"):
        return reply.get("result")
    err = reply.get("error") or {}
    raise ApiReplyError(str(err.get("code", "error")), str(err.get("message", "")), reply)


CALL_TIMEOUT_S = 30.0
"""How long a request may wait for its reply: a daemon that answers nothing for this long is stuck."""
SLOW_CALLS: dict[str, float] = {"log.verify": 900.0, "log.report": 900.0, "log.backup": 900.0}
"""Requests that walk or copy the whole log and may legitimately take minutes on a Pi (a chain
of 1M operations verifies in ~10 s here, 5-8x that on a Pi core): their own reply timeout."""


class ApiClient:
    """A blocking JSON-lines client; one connection, requests answered in order."""

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self._path = path
        self._timeout = CALL_TIMEOUT_S if timeout is None else timeout
        self._sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            try:
                sock.connect(str(self._path))
            except OSError as exc:
                sock.close()
                raise ApiUnavailable(f"cannot reach lockerd at {self._path}: {exc.strerror}") from None
            self._sock = sock
        return self._sock

    def raw(self, method: str, params: dict[str, Any] | None = None, *,
            timeout: float | None = None) -> dict[str, Any]:
        """Send a request and return the whole reply object; `timeout` (seconds; default: the
        method's in SLOW_CALLS, else the client's) holds for this request alone (a walk of a
        whole log takes longer than a status)."""
        sock = self._connect()
        sock.settimeout(timeout or SLOW_CALLS.get(method) or self._timeout)
        try:
            req = {"id": next(self._ids), "method": method, "params": params or {}}
            sock.sendall(json.dumps(req, ensure_ascii=False).encode() + b"\n")
            while b"\n" not in self._buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ApiUnavailable("lockerd closed the connection")
                self._buf += chunk
        finally:
            sock.settimeout(self._timeout)
        line, self._buf = self._buf.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             timeout: float | None = None) -> Any:
        """Send a request; the result, or ApiReplyError."""
        return _check(self.raw(method, params, timeout=timeout))

    def close(self) -> None:
        """Close the connection."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class AsyncApiClient:
    """An asyncio JSON-lines client; calls are serialised on one connection."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)

    async def __aenter__(self) -> AsyncApiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection."""
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(
                str(self._path), limit=1 << 22)
        except OSError as exc:
            raise ApiUnavailable(f"cannot reach lockerd at {self._path}: {exc.strerror}") from None

    async def raw(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return the whole reply object."""
        if self._writer is None or self._reader is None:
            await self.connect()
        assert self._writer is not None
        assert self._reader is not None
        async with self._lock:
            req = {"id": next(self._ids), "method": method, "params": params or {}}
            self._writer.write(json.dumps(req, ensure_ascii=False).encode() + b"\n")
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise ApiUnavailable("lockerd closed the connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send a request; the result, or ApiReplyError."""
        return _check(await self.raw(method, params))

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None
            self._reader = None
