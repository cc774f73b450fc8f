"""The kiosk's connection to the daemon: requests and replies, and the events pushed between them.

One Unix-socket connection carries both: replies have the request's `id`, pushed lines have an
`event` key and no `id` (docs/local-api.md, "Panel API v2"). A reader task sorts them; calls wait
on their own future. The connection is made again after the daemon restarts, and the
subscription renewed, so a screen survives `systemctl restart lockerd`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockerd.api.client import ApiReplyError, ApiUnavailable

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
READ_LIMIT = 1 << 22


class DaemonLink:
    """An asyncio JSON-lines client that also receives pushed events."""

    def __init__(self, path: Path, on_event: EventHandler | None = None, *,
                 timeout_s: float = 15.0) -> None:
        self._path = path
        self._on_event = on_event
        self._timeout = timeout_s
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connect_lock = asyncio.Lock()
        self._subscribed: str | None = None

    async def __aenter__(self) -> DaemonLink:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """True while the connection is up."""
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        """Open the connection (again) and renew the subscription if there was one."""
        async with self._connect_lock:
            if self.connected:
                return
            try:
                reader, writer = await asyncio.open_unix_connection(str(self._path),
                                                                    limit=READ_LIMIT)
            except OSError as exc:
                raise ApiUnavailable(f"cannot reach lockerd at {self._path}: {exc.strerror}"
                                     ) from None
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader), name="kiosk:link")
        if self._subscribed is not None:
            await self.subscribe(self._subscribed)

    async def subscribe(self, panel: str) -> dict[str, Any]:
        """Ask for this panel's events on this connection (renewed on every reconnect)."""
        self._subscribed = panel
        result: dict[str, Any] = await self.call("panel.subscribe", {"panel": panel})
        return result

    async def raw(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request; the whole reply object."""
        if not self.connected:
            await self.connect()
        assert self._writer is not None
        req_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[req_id] = future
        try:
            line = json.dumps({"id": req_id, "method": method, "params": params or {}},
                              ensure_ascii=False).encode() + b"\n"
            self._writer.write(line)
            await self._writer.drain()
            async with asyncio.timeout(self._timeout):
                return await future
        except (ConnectionError, OSError) as exc:
            raise ApiUnavailable(f"lost lockerd: {exc}") from None
        finally:
            self._waiting.pop(req_id, None)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send one request; its result, or ApiReplyError with the daemon's code."""
        reply = await self.raw(method, params)
        if reply.get("ok"):
            return reply.get("result")
        err = reply.get("error") or {}
        raise ApiReplyError(str(err.get("code", "error")), str(err.get("message", "")), reply)

    async def close(self) -> None:
        """Close the connection and stop the reader."""
        self._subscribed = None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()
        task, self._reader_task = self._reader_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    log.warning("unreadable line from lockerd")
                    continue
                if isinstance(msg, dict) and "event" in msg and "id" not in msg:
                    if self._on_event is not None:
                        try:
                            self._on_event(msg)
                        except Exception:
                            log.exception("kiosk event handler failed")
                    continue
                req_id = msg.get("id") if isinstance(msg, dict) else None
                future = self._waiting.get(req_id) if isinstance(req_id, int) else None
                if future is not None and not future.done():
                    future.set_result(msg)
        except (ConnectionError, OSError):
            pass
        finally:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionResetError("lockerd closed the connection"))
