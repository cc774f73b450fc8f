"""Logs written by earlier releases open, migrate forward and verify under the current code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lockerd.camera.evidence import EvidenceStore
from lockerd.oplog import OpLog, OplogKey
from tests.fixtures.paths import REPO

RELEASES = REPO / "tests" / "fixtures" / "releases"
# What each release's log held when it was written (see tests/fixtures/releases/README.md):
# 0.1.0 by hand, later ones from the manifest.json scripts/make_release_fixture writes.
HAND_COUNTED: dict[str, dict[str, int]] = {
    "0.1.0": {"operations": 42, "outbox": 21, "parcels": 5, "couriers": 3, "commands": 4},
}


def _expected_rows() -> dict[str, dict[str, int]]:
    found = dict(HAND_COUNTED)
    for manifest in RELEASES.glob("*/manifest.json"):
        found[manifest.parent.name] = dict(json.loads(manifest.read_text())["rows"])
    return found


EXPECTED_ROWS = _expected_rows()


def _count(conn: Any, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_every_release_folder_has_its_expectations() -> None:
    folders = {p.name for p in RELEASES.iterdir() if p.is_dir()}
    assert folders == set(EXPECTED_ROWS)
    for folder in folders:
        names = {p.name for p in (RELEASES / folder).iterdir()}
        assert {"oplog.db", "evidence.db", "oplog.key.hex"} <= names, folder


@pytest.mark.parametrize("release", sorted(EXPECTED_ROWS))
async def test_release_log_migrates_and_verifies(release: str, tmp_path: Path) -> None:
    source = RELEASES / release
    shutil.copy(source / "oplog.db", tmp_path / "oplog.db")
    key = OplogKey(bytes.fromhex((source / "oplog.key.hex").read_text().strip()))
    log = await OpLog.open(tmp_path / "oplog.db", key)
    try:
        result = await log.verify()
        assert result.ok, result
        for table, rows in EXPECTED_ROWS[release].items():
            assert await log.read(lambda c, t=table: _count(c, t)) >= rows, table
        operations = await log.operations()
        assert len(operations) >= EXPECTED_ROWS[release]["operations"]
    finally:
        await log.close()


@pytest.mark.parametrize("release", sorted(EXPECTED_ROWS))
async def test_release_evidence_opens_through_the_shared_helper(release: str,
                                                                tmp_path: Path) -> None:
    """The evidence store now opens with the log's SQLCipher helper; old files still open."""
    source = RELEASES / release
    for name in ("oplog.db", "evidence.db"):
        shutil.copy(source / name, tmp_path / name)
    key = OplogKey(bytes.fromhex((source / "oplog.key.hex").read_text().strip()))
    log = await OpLog.open(tmp_path / "oplog.db", key)
    try:
        evidence_key = await log.secret("evidence.key")
    finally:
        await log.close()
    store = EvidenceStore(tmp_path / "evidence.db", evidence_key, lambda: None)
    await store.open()
    try:
        assert await store.count() > 0
        assert await store.load(1) is not None
    finally:
        await store.close()
