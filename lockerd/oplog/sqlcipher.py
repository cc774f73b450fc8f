"""The one way lockerd opens an encrypted SQLite file: SQLCipher 4 settings and one set of PRAGMAs.

The operation log and the evidence store both open their files here, so a setting that protects
personal data at rest (temp tables in memory, the SQLCipher 4 cipher parameters, a 0600 file made
before SQLite creates its -wal and -shm from its mode) cannot be forgotten by one of them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import Any

from lockerd.oplog.errors import OplogError, WrongKey

# sqlcipher3's connection has exactly the sqlite3 API; typed as sqlite3's for callers.
Connection = sqlite3.Connection

RAW_KEY_BYTES = 32
BUSY_TIMEOUT_MS = 30_000
# Pinning the SQLCipher major version's parameters (page size, KDF, HMAC) keeps existing files
# readable if a later SQLCipher changes its defaults; both stores were created with version 4's.
CIPHER_COMPATIBILITY = 4

# Every connection, after the key has proved itself. temp_store = MEMORY: sorts and temporary
# tables never reach disk, where they would be plaintext (SQLCipher encrypts only the database).
PRAGMAS: tuple[tuple[str, str], ...] = (
    ("busy_timeout", str(BUSY_TIMEOUT_MS)),
    ("temp_store", "MEMORY"),
    ("foreign_keys", "ON"),
    ("synchronous", "FULL"),
)
# Connections that write: WAL (readers never block the writer), and a WAL that shrinks back to
# 8 MiB after a checkpoint instead of keeping its largest size forever.
WRITER_PRAGMAS: tuple[tuple[str, str], ...] = (
    ("journal_mode", "WAL"),
    ("journal_size_limit", str(8 * 1024 * 1024)),
)
READER_PRAGMAS: tuple[tuple[str, str], ...] = (("query_only", "ON"),)
# SQLite's page cache, per connection, in KiB (PRAGMA cache_size = -N). SQLite's default (2000
# KiB) filled over the first weeks of a cabinet's year and held ~2 MB per connection for good
# (writer, checkpointer, readers, evidence: +8 MB RSS in the year replay). The writer's hot
# pages (the right edges of the operation and outbox b-trees, the live-parcel indexes) fit in
# 1 MiB; a reader streams audit rows and gains nothing from caching more than 512 KiB.
WRITER_CACHE_KIB = 1024
CACHE_KIB = 512


def key_literal(key: bytes) -> str:
    """The literal for PRAGMA key/rekey.

    A 32-byte key is used raw (x'..', no KDF: it is already random); any other length is taken
    as a passphrase (its hex) and goes through SQLCipher's PBKDF2.
    """
    if len(key) == RAW_KEY_BYTES:
        return f"\"x'{key.hex()}'\""
    return f"'{key.hex()}'"


def _module(cipher: bool) -> ModuleType:
    if not cipher:
        return sqlite3
    # Imported lazily so tools that never open an encrypted file do not load the extension.
    from sqlcipher3 import dbapi2

    return dbapi2  # type: ignore[no-any-return]


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists.

    SQLite gives the -wal and -shm files the main file's mode, so making the main file private
    before SQLite creates it keeps all three from ever being readable by others.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def connect(path: Path, key: bytes | None, *, readonly: bool = False,
            cipher: bool = True, cache_kib: int = CACHE_KIB) -> Connection:
    """Open one connection with every PRAGMA set; raises WrongKey before anything is written.

    Autocommit mode (isolation_level=None): callers say BEGIN themselves. `cipher=False` opens
    plain sqlite3 with the same PRAGMAs, for the benchmark only. A writable file that does not
    exist yet is created 0600 first. `cache_kib` caps the connection's page cache.
    """
    module = _module(cipher)
    if cipher and key is None:
        raise OplogError(f"{path}: an encrypted database needs a key")
    if not readonly:
        create_private(path)
    conn: Any = module.connect(str(path), isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        if cipher:
            assert key is not None
            # SQLCipher logs decrypt failures to stderr itself; the WrongKey below says it once.
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(f"PRAGMA key = {key_literal(key)}")
            conn.execute(f"PRAGMA cipher_compatibility = {CIPHER_COMPATIBILITY}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except module.DatabaseError as exc:
            raise WrongKey(f"{path}: cannot decrypt with this key (wrong key, or not a lockerd "
                           f"database): {exc}") from None
        for name, value in (PRAGMAS + (("cache_size", str(-cache_kib)),)
                            + (READER_PRAGMAS if readonly else WRITER_PRAGMAS)):
            got = conn.execute(f"PRAGMA {name} = {value}").fetchone()
            if name == "journal_mode" and str(got[0]).lower() != value.lower():
                raise OplogError(f"{path}: cannot switch to {value} (got {got[0]})")
    except BaseException:
        conn.close()
        raise
    return conn  # type: ignore[no-any-return]


def rekey(conn: Connection, key: bytes) -> None:
    """Re-encrypt the open database with `key` and prove the new key reads it."""
    conn.execute(f"PRAGMA rekey = {key_literal(key)}")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
