"""A migration SIGKILLed at any step leaves a log that opens as before or completes on the next start.

For every release fixture older than the current schema, a child process opens a copy with the
current code and is killed before each statement the migration executes (and once after it
returned). The file left behind must be exactly one schema version's shape (the one its
user_version names: nothing half-applied), and the current code must then migrate it, verify
the chain and find every row of the fixture.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lockerd.oplog import OpLog, OplogKey, sqlcipher
from lockerd.oplog.schema import MIGRATIONS, SCHEMA_VERSION, _statements, migrate
from tests.fixtures.paths import REPO

CHILD = Path(__file__).with_name("migrate_child.py")
RELEASES = REPO / "tests" / "fixtures" / "releases"
TABLES = ("operations", "outbox", "parcels", "couriers", "commands", "live_state", "secrets")


def _key(release: str) -> bytes:
    return bytes.fromhex((RELEASES / release / "oplog.key.hex").read_text().strip())


def _version(db: Path, key: bytes) -> int:
    conn = sqlcipher.connect(db, key, readonly=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


OLDER = [r for r in sorted(p.name for p in RELEASES.iterdir() if p.is_dir())
         if _version(RELEASES / r / "oplog.db", _key(r)) < SCHEMA_VERSION]


def _shape(conn: Any) -> list[tuple[str, ...]]:
    return [tuple(map(str, r)) for r in conn.execute(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master ORDER BY name")]


def _counts(conn: Any) -> dict[str, int]:
    return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}


def _shapes_by_version(pristine: Path, key: bytes, work: Path) -> dict[int, list[tuple[str, ...]]]:
    """The schema each version defines, made from the fixture one migration at a time."""
    db = work / "reference.db"
    shutil.copy(pristine, db)
    conn = sqlcipher.connect(db, key)
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        shapes = {found: _shape(conn)}
        for version in range(found + 1, SCHEMA_VERSION + 1):
            conn.execute("BEGIN")
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
            shapes[version] = _shape(conn)
    finally:
        conn.close()
    return shapes


class Counting:
    """Counts the statements `migrate` executes (the steps the child is killed at)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.calls = 0

    def execute(self, sql: str, *args: Any) -> Any:
        self.calls += 1
        return self._conn.execute(sql, *args)


def _steps(pristine: Path, key: bytes, work: Path) -> int:
    db = work / "count.db"
    shutil.copy(pristine, db)
    conn = sqlcipher.connect(db, key)
    try:
        counting = Counting(conn)
        migrate(counting)
        return counting.calls
    finally:
        conn.close()


def _kill_at(db: Path, key: bytes, step: int) -> str:
    proc = subprocess.Popen([sys.executable, str(CHILD), str(db), key.hex(), str(step)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"paused {step} "), (line, proc.stderr.read() if proc.stderr
                                                    else "")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return line.split(" ", 2)[2].strip()


@pytest.mark.slow
@pytest.mark.parametrize("release", OLDER)
async def test_sigkill_at_every_migration_step(release: str, tmp_path: Path) -> None:
    pristine = RELEASES / release / "oplog.db"
    key = _key(release)
    shapes = _shapes_by_version(pristine, key, tmp_path)
    conn = sqlcipher.connect(tmp_path / "reference.db", key, readonly=True)
    try:
        rows = _counts(conn)
    finally:
        conn.close()
    steps = _steps(pristine, key, tmp_path)
    assert steps >= 4  # read the version, BEGIN, at least one statement, bump, COMMIT
    seen_versions = set()
    for step in range(steps + 1):
        db = tmp_path / f"step{step}" / "oplog.db"
        db.parent.mkdir()
        shutil.copy(pristine, db)
        what = _kill_at(db, key, step)
        # What the kill left: one version's shape exactly, never a half-applied migration.
        conn = sqlcipher.connect(db, key, readonly=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            assert _shape(conn) == shapes[version], (step, what)
        finally:
            conn.close()
        seen_versions.add(version)
        # The next start completes the migration; the chain and every row are intact.
        log = await OpLog.open(db, OplogKey(key))
        try:
            assert (await log.verify()).ok, (step, what)
            assert await log.read(_counts) == rows, (step, what)
            assert await log.read(_shape) == shapes[SCHEMA_VERSION]
        finally:
            await log.close()
    # The kills landed both before and after the migration committed.
    assert min(seen_versions) < SCHEMA_VERSION
    assert SCHEMA_VERSION in seen_versions


def test_every_migration_statement_runs_inside_its_transaction() -> None:
    """What SQLite cannot roll back (VACUUM, ATTACH, journal or foreign-key PRAGMAs, which are
    no-ops or errors inside a transaction) would break the all-or-nothing rule above."""
    for version, script in enumerate(MIGRATIONS, start=1):
        for statement in _statements(script):
            word = statement.split()[0].upper()
            assert word in {"CREATE", "DROP", "ALTER", "INSERT", "UPDATE", "DELETE"}, (
                version, statement)
