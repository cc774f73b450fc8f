"""Fixtures for operation-log tests: a fresh key, a key file, an open store on a real SQLCipher file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lockerd.oplog import OpLog, OplogKey
from lockerd.oplog.keys import write_key_file


@pytest.fixture
def key() -> OplogKey:
    """A random 256-bit key."""
    return OplogKey.generate()


@pytest.fixture
def key_file(tmp_path: Path, key: OplogKey) -> Path:
    """The key written 0600, owned by us."""
    path = tmp_path / "oplog.key"
    write_key_file(path, key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test database lives."""
    state = tmp_path / "state"
    state.mkdir()
    return state / "oplog.db"


@pytest.fixture
async def store(db_path: Path, key: OplogKey) -> AsyncIterator[OpLog]:
    """An open store, closed after the test."""
    log = await OpLog.open(db_path, key)
    try:
        yield log
    finally:
        await log.close()
