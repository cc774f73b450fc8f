"""Wrong-credential limiters: per caller and cabinet-wide, N failures in a window, then exponential lockouts.

A caller is who the kernel says is calling (the physical panel configured for a Unix user, else
`uid:<n>`), never a name the client sends, so inventing panel ids gains nothing. Every wrong code
or PIN also counts against a cabinet-wide limiter (one for codes, one for PINs): its ceiling is
what bounds a brute force whatever the number of callers (docs/local-api.md states the bound),
at the price that reaching it locks every panel out for that credential until its lockout ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from lockerd.domain.model import Limiter, SetLimiter
from lockerd.domain.spec import Policy


class Credential(StrEnum):
    """What was guessed: a recipient's pickup code or a courier's PIN (separate cabinet ceilings,
    so a code brute force does not stop deliveries and a PIN brute force does not stop pickups)."""

    CODE = "code"
    PIN = "pin"


#: Keys of the cabinet-wide limiters; a ':' never appears in a configured panel name.
CABINET_KEYS: dict[Credential, str] = {Credential.CODE: "cabinet:codes",
                                       Credential.PIN: "cabinet:pins"}
#: Most stale limiters one decision drops (a log from before the caller keying may hold many).
PRUNE_BATCH = 64


@dataclass(frozen=True, slots=True)
class Ladder:
    """One limiter's rule: `limit` failures within `window` start a lockout of `base`, doubling with
    each further lockout up to `cap`; the ladder is forgotten after `memory` without a failure."""

    limit: int
    window: timedelta
    base: timedelta
    cap: timedelta
    memory: timedelta


def caller_ladder(policy: Policy) -> Ladder:
    """The per-caller rule ([rules] wrong_code_*, lockout_*)."""
    return Ladder(policy.wrong_code_limit, policy.wrong_code_window, policy.lockout_base,
                  policy.lockout_max, max(policy.lockout_memory, policy.wrong_code_window))


def cabinet_ladder(policy: Policy) -> Ladder:
    """The cabinet-wide rule ([rules] cabinet_wrong_*, cabinet_lockout_*)."""
    return Ladder(policy.cabinet_wrong_limit, policy.cabinet_wrong_window,
                  policy.cabinet_lockout_base, policy.cabinet_lockout_max,
                  max(policy.lockout_memory, policy.cabinet_wrong_window))


def ladder_for(key: str, policy: Policy) -> Ladder:
    """The rule of the limiter under `key`."""
    return cabinet_ladder(policy) if key in CABINET_KEYS.values() else caller_ladder(policy)


def locked_until(lim: Limiter | None, now: datetime) -> datetime | None:
    """End of the running lockout, or None when the caller may try."""
    if lim is None or lim.locked_until is None or lim.locked_until <= now:
        return None
    return lim.locked_until


def record_failure(lim: Limiter | None, key: str, now: datetime, ladder: Ladder) -> Limiter:
    """Count one wrong code/PIN; the Nth within the window starts a lockout twice the last one."""
    lim = lim or Limiter(panel=key)
    last = lim.failures[-1] if lim.failures else lim.locked_until
    lockouts = 0 if last is None or now - last > ladder.memory else lim.lockouts
    failures = (*(t for t in lim.failures if now - t < ladder.window), now)
    if len(failures) < ladder.limit:
        return lim.model_copy(update={"failures": failures, "lockouts": lockouts})
    lockouts += 1
    duration = min(ladder.base * 2 ** min(lockouts - 1, 30), ladder.cap)
    return Limiter(panel=key, failures=(), lockouts=lockouts, locked_until=now + duration)


def record_success(lim: Limiter | None) -> Limiter | None:
    """A right code clears the caller's failure count (the lockout ladder only fades with time).

    Never used on a cabinet-wide limiter: one right code must not reset a brute force's count.
    The result may be empty (`Limiter.is_empty`), which deletes the limiter.
    """
    if lim is None or not lim.failures:
        return None
    return lim.model_copy(update={"failures": ()})


def is_stale(lim: Limiter, now: datetime, ladder: Ladder) -> bool:
    """True when dropping the limiter changes nothing: no running lockout, no failure still in
    the window and the ladder forgotten (`record_failure` would start it afresh)."""
    if locked_until(lim, now) is not None:
        return False
    marks = [t for t in (*lim.failures[-1:], lim.locked_until) if t is not None]
    return not marks or now - max(marks) > ladder.memory


def prune(limiters: dict[str, Limiter], now: datetime, policy: Policy, keep: frozenset[str]
          ) -> tuple[SetLimiter, ...]:
    """Changes deleting stale limiters (at most PRUNE_BATCH), other than those in `keep`."""
    stale = [key for key, lim in limiters.items()
             if key not in keep and is_stale(lim, now, ladder_for(key, policy))]
    return tuple(SetLimiter(value=Limiter(panel=key)) for key in stale[:PRUNE_BATCH])
