"""Schema migrations: a log written by an older lockerd is brought forward in place, data kept."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lockerd import __version__
from lockerd.app.daemon import Daemon
from lockerd.config import load_config
from lockerd.oplog import NewerSchema, OpLog, OplogKey, sqlcipher
from lockerd.oplog.records import get_parcel
from lockerd.oplog.schema import MIGRATIONS, SCHEMA_VERSION, _statements, migrate
from tests.fixtures.daemon_proc import make_config


def _tables(conn: sqlcipher.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlcipher.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


async def test_version_3_log_loses_the_never_written_plumbing(db_path: Path, key: OplogKey
                                                             ) -> None:
    conn = sqlcipher.connect(db_path, key.raw)
    try:
        for version, script in enumerate(MIGRATIONS[:3], start=1):
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
        now = "2026-01-01T00:00:00.000000Z"
        conn.execute("INSERT INTO parcels (id, kind, carrier, compartment, status, waybill, "
                     "code_hash, code_salt, flags, created_at, updated_at) VALUES "
                     "('p1', 'delivery', 'sf', 3, 'in_locker', 'SF1234567889', x'00', x'01', "
                     "'{}', ?, ?)", (now, now))
        conn.execute("INSERT INTO pickup_attempts (ts, panel, ok) VALUES (?, 'kiosk', 0)", (now,))
        assert {"pickup_attempts", "parcels"} <= _tables(conn)
    finally:
        conn.close()

    log = await OpLog.open(db_path, key)
    try:
        parcel = await log.read(lambda c: get_parcel(c, "p1"))
        tables = await log.read(_tables)
        columns = await log.read(lambda c: _columns(c, "parcels"))
        version = await log.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
    finally:
        await log.close()
    assert parcel is not None
    assert (parcel.waybill, parcel.compartment, parcel.created_at) == (
        "SF1234567889", 3, datetime(2026, 1, 1, tzinfo=UTC))
    assert "pickup_attempts" not in tables
    assert "code_hash" not in columns
    assert "code_salt" not in columns
    assert version == SCHEMA_VERSION


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = sqlcipher.connect(tmp_path / "x.db", bytes(32))
    try:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        with pytest.raises(NewerSchema) as info:
            migrate(conn)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert _tables(conn) == set()
    finally:
        conn.close()
    message = str(info.value)
    # what it found, what this release knows, why it stops, what to do, that nothing changed
    for part in (f"schema version {SCHEMA_VERSION + 1}", "newer lockerd",
                 f"lockerd {__version__} knows versions up to {SCHEMA_VERSION}",
                 "will not downgrade", "Reinstall the release that wrote it", "lockerctl restore",
                 "not changed"):
        assert part in message


async def test_the_daemon_refuses_a_newer_log_in_one_line(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    cfg = load_config(make_config(tmp_path))
    assert cfg.paths.key_file is not None
    key = bytes.fromhex(cfg.paths.key_file.read_text().strip())
    cfg.paths.state_dir.mkdir(mode=0o700)
    db = cfg.paths.state_dir / cfg.oplog.db_name
    conn = sqlcipher.connect(db, key)
    try:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    finally:
        conn.close()
    with caplog.at_level(logging.ERROR, logger="lockerd.app.daemon"):
        assert await Daemon(cfg).run() == 1
    lines = [r.getMessage() for r in caplog.records if r.name == "lockerd.app.daemon"]
    assert len(lines) == 1
    assert lines[0].startswith("cannot start: oplog: the operation log has schema version")
    assert "\n" not in lines[0]
