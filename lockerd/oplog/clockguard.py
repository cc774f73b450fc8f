"""Clock sanity for the operation log: no record stamped before the newest one or the release.

Why: a cabinet board without a real-time clock boots at 1970 or at the last fake-hwclock save
until NTP answers (often over a cellular link that takes minutes). Operations recorded then
would carry times earlier than the records before them: storage deadlines, retention and the
regulator's report all read those times. So while the clock reads earlier than the newest
record or than this release's date, nothing is recorded: the panel flows answer
`clock_not_set`, the cabinet is degraded with that reason, and recording resumes by itself once
the clock is set. The floor only rises (each record moves it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from lockerd.domain.errors import ErrorCode, Refused
from lockerd.domain.timefmt import format_ts
from lockerd.oplog.errors import OplogError

#: No real clock reads earlier than the day this release was made; raise it at each release
#: (tests/oplog/test_clockguard.py checks it is not in the future and not a year stale).
RELEASE_FLOOR = datetime(2026, 11, 1, tzinfo=UTC)


class ClockNotSet(OplogError, Refused):
    """The clock reads earlier than the newest record or the release: not recorded."""

    own_words = True  # times and lockerd's words only: the log keeps the whole hint

    def __init__(self, now: datetime, floor: datetime, why: str) -> None:
        Refused.__init__(self, ErrorCode.CLOCK_NOT_SET,
                         f"the clock reads {format_ts(now)}, earlier than {why} "
                         f"({format_ts(floor)}); waiting for time sync")
        self.now = now
        self.floor = floor


class ClockGuard:
    """The floor a new record's time must reach; checked on the writer thread, read anywhere."""

    def __init__(self, newest: datetime | None, *, release: datetime | None,
                 clock: Callable[[], datetime]) -> None:
        self._newest = newest
        self._release = release
        self._clock = clock
        self._lock = threading.Lock()

    def _floor(self) -> tuple[datetime, str] | None:
        with self._lock:
            newest = self._newest
        candidates = [(t, why) for t, why in ((newest, "the newest record"),
                                             (self._release, "this release's date"))
                      if t is not None]
        return max(candidates, key=lambda c: c[0]) if candidates else None

    def check(self, ts: datetime) -> None:
        """Raise ClockNotSet when `ts` is earlier than the floor; else raise the floor to it."""
        floor = self._floor()
        if floor is not None and ts < floor[0]:
            raise ClockNotSet(ts, floor[0], floor[1])
        with self._lock:
            if self._newest is None or ts > self._newest:
                self._newest = ts

    def problem(self) -> str | None:
        """Why nothing can be recorded now (None when the clock is sane)."""
        floor = self._floor()
        now = self._clock()
        if floor is None or now >= floor[0]:
            return None
        return str(ClockNotSet(now, floor[0], floor[1]).message)
