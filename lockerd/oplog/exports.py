"""Open exports between pages: the server-side state behind a `log.export` cursor.

An export is begun (recorded in the chain) by one call and read page by page by the next ones;
between them its plan lives here, bound to the caller's uid and to the masked/unmasked grant it
was begun with, so a cursor cannot be handed to someone else or widen what it shows. The number
of open exports is capped and an export idle for too long is dropped (its reader state is a few
integers: nothing is held open in the database between pages).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lockerd.oplog.audit import ExportPlan, rewind
from lockerd.oplog.errors import OplogError


class ExportCursorError(OplogError):
    """A cursor that cannot be used; `code` is the local API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class OpenExport:
    """One begun export: its plan, whose it is, and a lock so its pages are read one at a time."""

    plan: ExportPlan
    uid: int
    used: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OpenExports:
    """At most `limit` open exports, each dropped after `idle_s` without a page."""

    def __init__(self, limit: int, idle_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.idle_s = idle_s
        self._clock = clock
        self._open: dict[str, OpenExport] = {}
        self._pending = 0  # begun (room checked), not yet added: their record is being written

    def __len__(self) -> int:
        self._expire()
        return len(self._open)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, e in self._open.items()
                      if not e.lock.locked() and now - e.used > self.idle_s]:
            del self._open[token]

    def reserve(self) -> None:
        """Take a slot for an export about to begin, or refuse (too_many_exports) before
        anything is recorded; the slot is filled by `add` or given back by `release`."""
        if len(self) + self._pending >= self.limit:
            raise ExportCursorError(
                "too_many_exports", f"{self.limit} exports are open; finish one or wait "
                f"{self.idle_s:.0f} s for an abandoned one to expire")
        self._pending += 1

    def release(self) -> None:
        """Give back a reserved slot (the export did not begin)."""
        self._pending -= 1

    def add(self, plan: ExportPlan, uid: int) -> str:
        """Keep a begun export in its reserved slot; its cursor (unguessable: 128 bits)."""
        self._pending -= 1
        token = secrets.token_urlsafe(16)
        self._open[token] = OpenExport(plan, uid, self._clock())
        return token

    def get(self, token: str, uid: int) -> OpenExport:
        """The open export of `token` if it is `uid`'s; refusals name what is wrong."""
        self._expire()
        entry = self._open.get(token)
        if entry is None:
            raise ExportCursorError(
                "cursor_unknown", "no open export has this cursor (finished, expired after "
                f"{self.idle_s:.0f} s idle, or the daemon restarted): start the export again")
        if entry.uid != uid:
            raise ExportCursorError("cursor_not_yours", "this cursor belongs to another user's "
                                                        "export")
        entry.used = self._clock()
        return entry

    @staticmethod
    def seek(entry: OpenExport, page: int) -> None:
        """Position an export at the page its cursor names (under the export's lock): the next
        page, or the last one again (its reply was lost); any other was served already
        (cursor_unknown)."""
        plan = entry.plan
        if page == plan.page - 1 and rewind(plan):
            return
        if page != plan.page:
            raise ExportCursorError(
                "cursor_unknown", f"page {page} of this export was served already (it is at "
                f"page {plan.page}): only the next page or the last one again can be asked for")

    def touch(self, token: str) -> None:
        """Restart the idle clock after a page was served."""
        entry = self._open.get(token)
        if entry is not None:
            entry.used = self._clock()

    def close(self, token: str) -> None:
        """Forget a finished export."""
        self._open.pop(token, None)

    def clear(self) -> None:
        """Forget every open export (the log is closing)."""
        self._open.clear()
