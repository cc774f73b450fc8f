"""Exceptions of the operation log: clear domain errors instead of database tracebacks."""

from __future__ import annotations


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
