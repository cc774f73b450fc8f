"""Screen sessions of the kiosk: who is at the screen now, kept in memory only and forgotten when idle.

A session is a random cookie (HttpOnly, SameSite=Strict) plus a CSRF token the page carries in
its markup. A courier's credentials live here between the login and the next idle timeout (the
daemon re-checks them on every call, so they cannot be dropped after the login); nothing of a
session is written anywhere. After `idle_timeout_s` without a request the session returns home:
the courier is logged out and the screen is told to show the home page.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: A session nobody used for this long is dropped entirely (its page reloads into a new one).
FORGET_AFTER_S = 3600.0
#: Events queued for a page that is not listening are dropped past this many.
MAX_QUEUED = 200
#: At most this many sessions (one screen, a few reloads); the least recently used goes first.
MAX_SESSIONS = 64


@dataclass(slots=True)
class Courier:
    """A logged-in courier's credentials (sent with each courier call): a PIN or an offline pass."""

    carrier: str | None
    courier_id: str | None
    pin: str | None = field(repr=False)
    pass_token: str | None = field(default=None, repr=False)

    def params(self, panel: str) -> dict[str, Any]:
        """The credentials as the daemon's courier methods take them."""
        if self.pass_token is not None:
            return {"panel": panel, "pass": self.pass_token}
        return {"panel": panel, "carrier": self.carrier, "courier_id": self.courier_id,
                "pin": self.pin}


@dataclass(slots=True)
class Session:
    """One browser's screen state on the kiosk."""

    sid: str
    csrf: str
    last_seen: float
    courier: Courier | None = None
    ops: set[str] = field(default_factory=set)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED))

    def send(self, event: dict[str, Any]) -> None:
        """Queue an event for the page; the oldest is dropped when the page is not reading."""
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(event)


class SessionStore:
    """Sessions by cookie; the idle sweep logs couriers out and sends screens home."""

    def __init__(self, idle_timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self) -> Session:
        """A fresh session with its own CSRF token."""
        session = Session(secrets.token_urlsafe(24), secrets.token_urlsafe(24), self._clock())
        self._sessions[session.sid] = session
        if len(self._sessions) > MAX_SESSIONS:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.sid]
        return session

    def get(self, sid: str | None) -> Session | None:
        """The session of a cookie (None when unknown or forgotten); marks it as used now."""
        session = self._sessions.get(sid or "")
        if session is not None:
            session.last_seen = self._clock()
        return session

    def all(self) -> list[Session]:
        """Every live session."""
        return list(self._sessions.values())

    def sweep(self, busy: Callable[[Session], bool]) -> list[Session]:
        """Send idle sessions home (not while one of their doors is open); forget old ones.
        Returns the sessions sent home."""
        now = self._clock()
        home = []
        for session in list(self._sessions.values()):
            idle = now - session.last_seen
            if idle > FORGET_AFTER_S:
                del self._sessions[session.sid]
            elif idle > self.idle_timeout_s and not busy(session) and (
                    session.courier is not None or session.ops):
                session.courier = None
                session.ops.clear()
                session.send({"event": "home", "op": None, "reason": "idle"})
                home.append(session)
        return home
