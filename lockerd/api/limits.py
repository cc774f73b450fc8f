"""Local API limits: connection caps overall and per uid, a request rate per connection, throttled logs.

A caller with no role could open connections until the daemon ran out of descriptors and wrote a
traceback per failed accept. The caps refuse the newcomer instead (its connection is answered
and closed at once); root and the daemon's own uid skip the per-uid cap and the rate limit and
have a few slots beyond the overall cap, so an operator can still get in. Refusals are logged
through `ThrottledLog`: one line per kind and interval, with the count of the ones left out.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from lockerd.config import Api as ApiConfig

#: Connections root and the daemon's uid may open beyond `max_connections`.
PRIVILEGED_RESERVE = 8


class ConnectionLimits:
    """Counts open connections overall and per uid; `admit` says whether a new one may stay."""

    def __init__(self, cfg: ApiConfig) -> None:
        self._max = cfg.max_connections
        self._per_uid = cfg.max_connections_per_uid
        self._open: Counter[int] = Counter()
        self.refused = 0

    @property
    def total(self) -> int:
        """Connections admitted and not yet released."""
        return self._open.total()

    def admit(self, uid: int, *, privileged: bool) -> str | None:
        """Count a new connection of `uid` in, or say why it is refused (then it is not counted)."""
        cap = self._max + (PRIVILEGED_RESERVE if privileged else 0)
        if self.total >= cap:
            self.refused += 1
            return f"too many connections (cap {self._max})"
        if not privileged and self._open[uid] >= self._per_uid:
            self.refused += 1
            return f"too many connections from uid {uid} (cap {self._per_uid})"
        self._open[uid] += 1
        return None

    def release(self, uid: int) -> None:
        """An admitted connection of `uid` closed."""
        self._open[uid] -= 1
        if self._open[uid] <= 0:
            del self._open[uid]


@dataclass(slots=True)
class TokenBucket:
    """At most `rate` requests a second on average, `burst` at once."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _tokens: float = field(init=False)
    _at: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = self.burst
        self._at = self.clock()

    def take(self) -> bool:
        """Spend one token; False when none is left (the request is refused)."""
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class ThrottledLog:
    """A logger that writes each kind of line at most once per `interval_s`; the next line written
    says how many were left out, so a flood costs a few lines, not one per event."""

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._skipped: Counter[str] = Counter()

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: bool = False) -> None:
        """Log `msg % args` unless a `key` line was written within the interval."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._skipped[key] += 1
            return
        skipped = self._skipped.pop(key, 0)
        if skipped:
            msg += f" ({skipped} more like this in the last {self._interval:.0f} s not logged)"
        self._last[key] = now
        if len(self._last) > 1024:          # keys are per uid: keep the table small
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        self._log.log(level, msg, *args, exc_info=exc_info)
