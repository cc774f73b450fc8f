"""Wrong-code limiter per panel: N failures in a sliding window, then an exponential lockout."""

from __future__ import annotations

from datetime import datetime

from lockerd.domain.model import Limiter
from lockerd.domain.spec import Policy


def locked_until(lim: Limiter | None, now: datetime) -> datetime | None:
    """End of the running lockout, or None when the panel may try."""
    if lim is None or lim.locked_until is None or lim.locked_until <= now:
        return None
    return lim.locked_until


def record_failure(lim: Limiter | None, panel: str, now: datetime, policy: Policy) -> Limiter:
    """Count one wrong code/PIN; the Nth within the window starts a lockout twice the last one."""
    lim = lim or Limiter(panel=panel)
    last = lim.failures[-1] if lim.failures else lim.locked_until
    lockouts = 0 if last is None or now - last > policy.lockout_memory else lim.lockouts
    failures = (*(t for t in lim.failures if now - t < policy.wrong_code_window), now)
    if len(failures) < policy.wrong_code_limit:
        return lim.model_copy(update={"failures": failures, "lockouts": lockouts})
    lockouts += 1
    duration = min(policy.lockout_base * 2 ** min(lockouts - 1, 30), policy.lockout_max)
    return Limiter(panel=panel, failures=(), lockouts=lockouts, locked_until=now + duration)


def record_success(lim: Limiter | None) -> Limiter | None:
    """A right code clears the failure count (the lockout ladder only fades with time)."""
    if lim is None or not lim.failures:
        return None
    return lim.model_copy(update={"failures": ()})
