"""Exceptions of the operation log: clear domain errors instead of database tracebacks."""

from __future__ import annotations

import errno

#: SQLite's primary result code for "database or disk is full" (SQLITE_FULL).
SQLITE_FULL = 13


class OplogError(Exception):
    """Base of every operation-log failure."""


class KeyRefused(OplogError):
    """The key is missing, readable by others, malformed or the published example key.

    Its text is lockerd's own words, config key names and paths (never a key or a caller's
    value), so the log's redaction keeps its hints (lockerd.privacy.own_words).
    """

    own_words = True


class WrongKey(OplogError):
    """The database cannot be decrypted with this key (or is not an operation log)."""


class NewerSchema(OplogError, RuntimeError):
    """The log was written by a newer lockerd (a higher schema version): never downgraded."""


class WriterStopped(OplogError):
    """The store is closed or its writer thread has died; nothing more can be recorded."""


class PersonalDataInChain(OplogError, ValueError):
    """An operation body carried a personal field; those belong in domain tables (retention)."""


class RekeyRefused(OplogError):
    """The key cannot be rotated here (e.g. it comes from read-only systemd credentials)."""


class DuplicateCommand(OplogError):
    """A command id was already remembered for this carrier (a replay raced the first reply)."""

    def __init__(self, carrier: str, cmd_id: str) -> None:
        super().__init__(f"command {cmd_id!r} of carrier {carrier!r} is already recorded")
        self.carrier = carrier
        self.cmd_id = cmd_id


class DiskFull(OplogError):
    """A commit failed because the disk (or the file system holding the log) is full.

    Nothing of the group was written; the same append succeeds once there is space again."""


def is_disk_full(exc: BaseException | None) -> bool:
    """True when `exc` or an exception it was raised from says the disk is full: SQLITE_FULL
    from sqlite3/sqlcipher3, OSError ENOSPC, or our own DiskFull (checked along the chain,
    since the writer and the use cases wrap what they catch)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        code = getattr(exc, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF == SQLITE_FULL:
            return True
        if "database or disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
