"""Local API: JSON lines on a Unix socket, callers identified by SO_PEERCRED and mapped to roles."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lockerd.api.limits import ConnectionLimits, ThrottledLog, TokenBucket
from lockerd.api.wire import encode_reply, hostile, strict_params
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
    #: The physical panel configured for this uid (`[[api.panels]]`), None when unbound.
    panel: str | None = None

    @property
    def is_root(self) -> bool:
        """uid 0: may do what needs root (unmasked export)."""
        return self.uid == 0

    @property
    def identity(self) -> str:
        """What wrong-code limits and open door operations are keyed on: the configured panel,
        else `uid:<n>`; never anything the client sends."""
        return self.panel or f"uid:{self.uid}"


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


#: SO_PEERGROUPS (Linux 4.13+; 59 on arm and x86, which Python 3.11 does not name).
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
_MAX_PEER_GROUPS = 256  # Python caps getsockopt buffers at 1024 bytes


def socket_peer_groups(sock: socket.socket) -> set[int]:
    """The connecting process's supplementary gids, from the kernel (SO_PEERGROUPS): what a
    unit's SupplementaryGroups= gave it even when the group database does not list it."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * _MAX_PEER_GROUPS)
    except OSError:  # ERANGE: more than 256 groups; the group database still answers
        return set()
    return set(struct.unpack(f"{len(raw) // 4}I", raw[: len(raw) // 4 * 4]))


def peer_groups(uid: int, gid: int, kernel_groups: set[int] | frozenset[int] = frozenset()
                ) -> set[int]:
    """The peer's gid and supplementary gids (SO_PEERCRED, SO_PEERGROUPS) and every group its
    user is a member of in the group database (os.getgrouplist).

    Not /proc/PID/status: under the unit's ProtectProc=invisible the daemon cannot read other
    users' processes, and supplementary groups read there were silently lost (issue 12). The
    database makes a new membership count at the next connection, without logging in again; a
    uid with no user entry has only what the kernel reports.
    """
    groups = {gid, *kernel_groups}
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return groups
    groups.update(os.getgrouplist(name, gid))
    return groups


class RoleMap:
    """Maps Unix groups to roles; looked up per connection so a new group takes effect at once."""

    def __init__(self, cfg: ApiConfig) -> None:
        self._names = {Role.PANEL: cfg.panel_group, Role.TECH: cfg.tech_group,
                       Role.AUDIT: cfg.audit_group}

    def roles_for(self, uid: int, gid: int, kernel_groups: set[int] | frozenset[int] = frozenset()
                  ) -> frozenset[Role]:
        """Roles of a peer."""
        if uid in (0, os.geteuid()):
            return ALL_ROLES
        groups = peer_groups(uid, gid, kernel_groups)
        roles = set()
        for role, name in self._names.items():
            try:
                if grp.getgrnam(name).gr_gid in groups:
                    roles.add(role)
            except KeyError:
                continue
        return frozenset(roles)


PUSH_BUFFER_LIMIT = 1 << 20
"""A subscriber that lets this many unread bytes pile up is cut off (a stuck screen)."""


class Pusher:
    """Lines the server sends on one connection without a request: subscriptions' events.

    A pushed line is one JSON object with an `event` key and no `id`; it is written whole, so
    it never splits a reply, and may arrive between replies. Handlers reach the pusher of the
    connection they serve with `current_pusher()`, and register what to undo when it closes.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._on_close: list[Callable[[], None]] = []
        self.closed = False

    def push(self, event: dict[str, Any]) -> bool:
        """Queue one event line; False (and the connection closed) when the peer stopped reading."""
        if self.closed:
            return False
        if self._writer.transport.get_write_buffer_size() > PUSH_BUFFER_LIMIT:
            log.warning("API subscriber does not read its events; closing its connection")
            self._writer.transport.abort()
            self.close()
            return False
        self._writer.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
        return True

    @property
    def subscribed(self) -> bool:
        """Whether a subscription waits for events on this connection."""
        return bool(self._on_close) and not self.closed

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the connection ends (unsubscribe)."""
        self._on_close.append(callback)

    def close(self) -> None:
        """The connection ended: run the close callbacks once."""
        if self.closed:
            return
        self.closed = True
        callbacks, self._on_close = self._on_close, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("API subscription close callback failed")


_PUSHER: contextvars.ContextVar[Pusher | None] = contextvars.ContextVar("api_pusher", default=None)


def current_pusher() -> Pusher | None:
    """The pusher of the connection whose request is being handled (None outside a request)."""
    return _PUSHER.get()


class PanelMap:
    """uid -> configured physical panel; user names resolved per connection (like groups), so
    a user created after start-up is bound at once."""

    def __init__(self, cfg: ApiConfig) -> None:
        self._bindings = [(b.user, b.panel) for b in cfg.panels]

    def panel_for(self, uid: int) -> str | None:
        """The panel bound to `uid`, None when none is."""
        for user, panel in self._bindings:
            if isinstance(user, int):
                if user == uid:
                    return panel
                continue
            try:
                if pwd.getpwnam(user).pw_uid == uid:
                    return panel
            except KeyError:
                continue
        return None


class ApiServer(Component):
    """The local socket server. Other components register methods with `route()`."""

    name = "api"
    critical = True

    def __init__(self, cfg: ApiConfig, socket_path: Path) -> None:
        super().__init__()
        self._cfg = cfg
        self._path = socket_path
        self._roles = RoleMap(cfg)
        self._panels = PanelMap(cfg)
        self._routes: dict[str, Route] = {}
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._limits = ConnectionLimits(cfg)
        self._throttled = ThrottledLog(log)
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

    def params_model(self, method: str) -> type[BaseModel]:
        """The model a registered method's params are validated with (tests feed it hostile input)."""
        return self._routes[method].params or NoParams

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
                "connections": self._limits.total, "refused_connections": self._limits.refused}

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        uid: int | None = None
        try:
            pid, peer_uid, gid = peer_credentials(writer.get_extra_info("socket"))
            refused = self._limits.admit(peer_uid, privileged=peer_uid in (0, os.geteuid()))
            if refused is not None:
                self._throttled.log(logging.WARNING, "connections",
                                    "API refused a connection of uid %d: %s", peer_uid, refused)
                await self._send(writer, None, error=("too_many_connections", refused))
                return
            uid = peer_uid
            kernel_groups = socket_peer_groups(writer.get_extra_info("socket"))
            caller = Caller(pid, uid, gid, self._roles.roles_for(uid, gid, kernel_groups),
                            self._panels.panel_for(uid))
            await self._serve(caller, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # stop(): end this connection's task normally; a cancelled one makes asyncio's stream
            # callback log a traceback per open connection
            pass
        except Exception:
            self._throttled.log(logging.ERROR, "failed", "API connection failed", exc_info=True)
        finally:
            if uid is not None:
                self._limits.release(uid)
            if task is not None:
                self._conns.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, caller: Caller, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        pusher = Pusher(writer)
        _PUSHER.set(pusher)
        try:
            await self._serve_lines(caller, reader, writer, pusher)
        finally:
            pusher.close()

    async def _serve_lines(self, caller: Caller, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter, pusher: Pusher) -> None:
        """Answer requests in order until the peer closes, idles out (TimeoutError, closed without
        a reply) or sends too long a line; beyond the request rate a request gets rate_limited."""
        privileged = caller.uid in (0, os.geteuid())
        bucket = TokenBucket(self._cfg.max_requests_per_s, 2 * self._cfg.max_requests_per_s)
        while True:
            try:
                # A subscribed screen waits for pushed events, not for its own requests: the idle
                # timeout is for connections that neither ask nor listen.
                idle = None if pusher.subscribed else self._cfg.idle_timeout_s
                line = await asyncio.wait_for(reader.readuntil(b"\n"), idle)
            except asyncio.LimitOverrunError:
                await self._send(writer, None, error=("too_large", "request line too long"))
                return
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return
                line = exc.partial
            if not line.strip():
                continue
            if not privileged and not bucket.take():
                self._throttled.log(logging.WARNING, f"rate:{caller.uid}",
                                    "API rate-limited uid %d (over %s requests/s)", caller.uid,
                                    self._cfg.max_requests_per_s)
                reply = _error(None, "rate_limited", "too many requests; slow down")
            else:
                reply = await self.dispatch(line, caller)
            writer.write(encode_reply(reply))
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
            problem = hostile(raw)
            if problem is not None:
                return _error(None, "bad_request", problem)
            req = Request.model_validate(raw, strict=True)
        except (ValueError, ValidationError, RecursionError):
            return _error(None, "bad_request", "request is not a JSON object with a method")
        route = self._routes.get(req.method)
        if route is None:
            return _error(req.id, "unknown_method", f"no method {req.method!r}")
        if not route.roles & caller.roles:
            self.refusals += 1
            needed = " or ".join(sorted(r.value for r in route.roles))
            self._throttled.log(logging.WARNING, f"forbidden:{caller.uid}",
                                "API refused %s to uid %d (needs role %s)", req.method,
                                caller.uid, needed)
            return _error(req.id, "forbidden", f"{req.method} needs role {needed}")
        try:
            params = strict_params(route.params or NoParams, req.params)
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
        loc = ".".join(str(p)[:64] for p in err["loc"]) or "params"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
