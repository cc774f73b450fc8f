"""The operation log and the evidence store open their files through one helper with one set of PRAGMAs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lockerd.camera.evidence import EvidenceStore
from lockerd.oplog import OpLog, OplogKey, WrongKey, sqlcipher

# What every connection must report back, whichever store opened it.
EXPECTED = {
    "temp_store": 2,            # MEMORY: no plaintext temp files
    "foreign_keys": 1,
    "synchronous": 2,           # FULL
    "busy_timeout": sqlcipher.BUSY_TIMEOUT_MS,
    "cipher_page_size": "4096",  # SQLCipher 4 parameters
    "cipher_hmac_algorithm": "HMAC_SHA512",
    "cipher_kdf_algorithm": "PBKDF2_HMAC_SHA512",
    "cipher_use_hmac": "1",
}


def _pragmas(conn: Any) -> dict[str, Any]:
    names = [*EXPECTED, "journal_mode", "query_only", "cache_size"]
    return {n: conn.execute(f"PRAGMA {n}").fetchone()[0] for n in names}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Path, bool, Any]]:
    """Every (path, readonly, connection) the helper hands out during the test."""
    seen: list[tuple[Path, bool, Any]] = []
    real = sqlcipher.connect

    def spy(path: Path, key: bytes | None, *, readonly: bool = False, cipher: bool = True,
            cache_kib: int = sqlcipher.CACHE_KIB) -> Any:
        conn = real(path, key, readonly=readonly, cipher=cipher, cache_kib=cache_kib)
        seen.append((Path(path), readonly, conn))
        return conn

    monkeypatch.setattr(sqlcipher, "connect", spy)
    return seen


async def test_oplog_and_evidence_share_the_pragmas(tmp_path: Path, key: OplogKey,
                                                    opened: list[tuple[Path, bool, Any]]) -> None:
    log_path, ev_path = tmp_path / "oplog.db", tmp_path / "evidence.db"
    log = await OpLog.open(log_path, key, readers=1)
    evidence = EvidenceStore(ev_path, bytes(range(32)), lambda: None)
    await evidence.open()
    try:
        assert {p for p, _, _ in opened} == {log_path, ev_path}
        # the log: writer, background checkpointer, one reader; the evidence store: one writer
        assert sorted((p.name, ro) for p, ro, _ in opened) == [
            ("evidence.db", False), ("oplog.db", False), ("oplog.db", False), ("oplog.db", True)]
        # read each connection on the thread that owns it
        got = [await log.write(_pragmas), await log.read(_pragmas)]
        ev_conn = next(c for p, _, c in opened if p == ev_path)
        # on the evidence store's own thread, as its connection expects
        got.append(await evidence._call(lambda: _pragmas(ev_conn)))
    finally:
        await evidence.close()
        await log.close()
    writer_log, reader_log, writer_ev = got
    for pragmas in got:
        assert {k: pragmas[k] for k in EXPECTED} == EXPECTED, pragmas
    assert (writer_log["journal_mode"], writer_log["query_only"]) == ("wal", 0)
    assert (writer_ev["journal_mode"], writer_ev["query_only"]) == ("wal", 0)
    assert reader_log["query_only"] == 1
    # page caches capped (SQLite's default of 2000 KiB per connection grew RSS over a year)
    assert writer_log["cache_size"] == -sqlcipher.WRITER_CACHE_KIB
    assert (reader_log["cache_size"], writer_ev["cache_size"]) == (-sqlcipher.CACHE_KIB,) * 2
    for path in (log_path, ev_path):
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_bytes()[:16] != b"SQLite format 3\x00"


def test_helper_refuses_a_wrong_key_without_writing(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    conn = sqlcipher.connect(path, bytes(32))
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(WrongKey, match="cannot decrypt"):
        sqlcipher.connect(path, bytes([1]) * 32)
    assert path.read_bytes() == before
    plain = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            plain.execute("SELECT * FROM sqlite_master").fetchall()
    finally:
        plain.close()


def test_raw_keys_skip_the_kdf_and_passphrases_do_not() -> None:
    assert sqlcipher.key_literal(bytes(32)) == "\"x'" + "00" * 32 + "'\""
    assert sqlcipher.key_literal(b"sixteen-byte-key") == "'" + b"sixteen-byte-key".hex() + "'"
