"""Encrypted, tamper-evident operation log (SQLCipher 4): the chain, outbox and domain tables.

Modules: store (the OpLog facade), writer (group commit thread), checkpoint (WAL policy), chain
(row insert, verify), outbox, readers (read pool), sqlcipher (connection helper), records (domain
tables), schema, retention, audit (masked view, export, report), keys, backup (backup and
restore), component.
"""

from lockerd.oplog.checkpoint import CheckpointPolicy
from lockerd.oplog.errors import (
    DuplicateCommand,
    KeyRefused,
    NewerSchema,
    OplogError,
    PersonalDataInChain,
    RekeyRefused,
    WriterStopped,
    WrongKey,
)
from lockerd.oplog.keys import EXAMPLE_KEY_HEX, OplogKey, load_key
from lockerd.oplog.models import (
    CABINET_STREAM,
    CommandRecord,
    Operation,
    OutboxMessage,
    OutboxRow,
    VerifyResult,
)
from lockerd.oplog.store import Connection, Mutation, OpLog

__all__ = [
    "CABINET_STREAM",
    "EXAMPLE_KEY_HEX",
    "CheckpointPolicy",
    "CommandRecord",
    "Connection",
    "DuplicateCommand",
    "KeyRefused",
    "Mutation",
    "NewerSchema",
    "OpLog",
    "Operation",
    "OplogError",
    "OplogKey",
    "OutboxMessage",
    "OutboxRow",
    "PersonalDataInChain",
    "RekeyRefused",
    "VerifyResult",
    "WriterStopped",
    "WrongKey",
    "load_key",
]
