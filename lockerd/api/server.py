"""Local API: JSON lines on a Unix socket, callers identified by SO_PEERCRED and mapped to roles."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lockerd.app.supervisor import Component
from lockerd.config import Api as ApiConfig
from lockerd.domain.errors import Refused

log = logging.getLogger(__name__)


class Role(StrEnum):
    """Roles of docs/local-api.md; root and the daemon's own user hold all of them."""

    PANEL = "panel"
    TECH = "tech"
    AUDIT = "audit"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is on the other end of the socket (from the kernel, not from the request)."""

    pid: int
    uid: int
    gid: int
    roles: frozenset[Role]

    @property
    def is_root(self) -> bool:
        """uid 0: may do what needs root (unmasked export)."""
        return self.uid == 0


class ApiError(Exception):
    """A local-API-only error (technician and audit methods: door outcomes, export limits ...).

    Refusals of cabinet commands are `lockerd.domain.errors.Refused` with an `ErrorCode`;
    both become the same `ok:false` reply in `ApiServer.dispatch`.
    """

    def __init__(self, code: str, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.result = result


class Request(BaseModel):
    """One request line."""

    model_config = ConfigDict(extra="forbid")
    id: int | str | None = None
    method: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


Handler = Callable[[Any, Caller], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Route:
    """A method: who may call it, how its params are validated, what runs it."""

    roles: frozenset[Role]
    params: type[BaseModel] | None
    handler: Handler


class NoParams(BaseModel):
    """For methods that take no parameters."""

    model_config = ConfigDict(extra="forbid")


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the connected peer, from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def peer_groups(pid: int, gid: int) -> set[int]:
    """Primary and supplementary gids of the peer process (/proc/PID/status)."""
    groups = {gid}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                groups.update(int(g) for g in line.split()[1:])
                break
    return groups


class RoleMap:
    """Maps Unix groups to roles; looked up per connection so a new group takes effect at once."""

    def __init__(self, cfg: ApiConfig) -> None:
        self._names = {Role.PANEL: cfg.panel_group, Role.TECH: cfg.tech_group,
                       Role.AUDIT: cfg.audit_group}

    def roles_for(self, pid: int, uid: int, gid: int) -> frozenset[Role]:
        """Roles of a peer."""
        if uid in (0, os.geteuid()):
            return ALL_ROLES
        groups = peer_groups(pid, gid)
        roles = set()
        for role, name in self._names.items():
            try:
                if grp.getgrnam(name).gr_gid in groups:
                    roles.add(role)
            except KeyError:
                continue
        return frozenset(roles)


class ApiServer(Component):
    """The local socket server. Other components register methods with `route()`."""

    name = "api"
    critical = True

    def __init__(self, cfg: ApiConfig, socket_path: Path) -> None:
        super().__init__()
        self._cfg = cfg
        self._path = socket_path
        self._roles = RoleMap(cfg)
        self._routes: dict[str, Route] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.refusals = 0

    def route(self, method: str, roles: frozenset[Role] | set[Role],
              params: type[BaseModel] | None, handler: Handler) -> None:
        """Register a method; `params` validates the request's params (None: no params)."""
        if method in self._routes:
            raise ValueError(f"method {method} registered twice")
        self._routes[method] = Route(frozenset(roles), params or NoParams, handler)

    @property
    def methods(self) -> list[str]:
        """Registered method names."""
        return sorted(self._routes)

    async def start(self) -> None:
        """Bind the socket (replacing a stale one) with the configured mode."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._server = await asyncio.start_unix_server(
            self._on_connection, path=str(self._path), limit=self._cfg.max_request_bytes)
        os.chmod(self._path, self._cfg.socket_mode)
        log.info("API listening on %s", self._path)

    async def stop(self) -> None:
        """Close the server and every connection, remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._conns):
            task.cancel()
        for task in list(self._conns):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    def status(self) -> dict[str, Any]:
        """Socket path and counters."""
        return {"socket": str(self._path), "requests": self.requests, "refusals": self.refusals,
                "connections": len(self._conns)}

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            sock = writer.get_extra_info("socket")
            pid, uid, gid = peer_credentials(sock)
            caller = Caller(pid, uid, gid, self._roles.roles_for(pid, uid, gid))
            await self._serve(caller, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("API connection failed")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, caller: Caller, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                await self._send(writer, None, error=("too_large", "request line too long"))
                return
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return
                line = exc.partial
            if not line.strip():
                continue
            reply = await self.dispatch(line, caller)
            writer.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
            await writer.drain()

    async def _send(self, writer: asyncio.StreamWriter, req_id: Any,
                    error: tuple[str, str]) -> None:
        writer.write(json.dumps(_error(req_id, *error)).encode() + b"\n")
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def dispatch(self, line: bytes, caller: Caller) -> dict[str, Any]:
        """Handle one request line; never raises."""
        self.requests += 1
        self.progress()
        try:
            raw = json.loads(line)
            req = Request.model_validate(raw)
        except (ValueError, ValidationError):
            return _error(None, "bad_request", "request is not a JSON object with a method")
        route = self._routes.get(req.method)
        if route is None:
            return _error(req.id, "unknown_method", f"no method {req.method!r}")
        if not route.roles & caller.roles:
            self.refusals += 1
            needed = " or ".join(sorted(r.value for r in route.roles))
            log.warning("API refused %s to uid %d (needs role %s)", req.method, caller.uid,
                        needed)
            return _error(req.id, "forbidden", f"{req.method} needs role {needed}")
        try:
            params = (route.params or NoParams).model_validate(req.params)
        except ValidationError as exc:
            return _error(req.id, "bad_params", _describe(exc))
        try:
            result = await route.handler(params, caller)
        except Refused as exc:
            return _error(req.id, exc.code.value, exc.message, exc.detail)
        except ApiError as exc:
            return _error(req.id, exc.code, exc.message, exc.result)
        except Exception:
            log.exception("API method %s failed", req.method)
            return _error(req.id, "internal", "internal error; see the daemon's log")
        return {"id": req.id, "ok": True, "result": result}


def _error(req_id: Any, code: str, message: str, result: Any = None) -> dict[str, Any]:
    """The local API's error reply; `result` (e.g. when a lockout ends) only when there is one."""
    reply: dict[str, Any] = {"id": req_id, "ok": False, "error": {"code": code, "message": message}}
    if result is not None:
        reply["result"] = result
    return reply


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
