"""Hash chain: edits, deletions, reorders and a truncated tail made with a raw connection are caught."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlcipher3 import dbapi2

from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.oplog.canonical import CHAIN_VERSION, dumps, row_hash


async def _build(db_path: Path, key: OplogKey, n: int = 10) -> None:
    log = await OpLog.open(db_path, key)
    try:
        for i in range(n):
            await log.append("parcel.deposited", actor="courier:sf/1", body={"i": i},
                             compartment=i % 4 + 1, parcel_id=f"p{i}",
                             outbox=[OutboxMessage("sf", "t", {"i": i})] if i == n - 1 else ())
        assert (await log.verify()).ok
    finally:
        await log.close()


def _raw(db_path: Path, key: OplogKey, sql: Callable[[Any], None]) -> None:
    conn = dbapi2.connect(str(db_path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA key = {key.pragma_literal}")
        conn.execute("BEGIN")
        sql(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _edit_body(conn: Any) -> None:
    conn.execute("UPDATE operations SET body = '{\"i\":99}' WHERE seq = 4")


def _edit_actor(conn: Any) -> None:
    conn.execute("UPDATE operations SET actor = 'someone-else' WHERE seq = 6")


def _edit_and_rehash(conn: Any) -> None:
    # A forger who recomputes the row's own hash still breaks the next row's prev_hash.
    row = conn.execute("SELECT seq, ts, kind, actor, compartment, parcel_id, body, prev_hash "
                       "FROM operations WHERE seq = 5").fetchone()
    body = '{"i":1234}'
    digest = row_hash(row[0], row[1], row[2], row[3], row[4], row[5], body, row[7])
    conn.execute("UPDATE operations SET body = ?, hash = ? WHERE seq = 5", (body, digest))


def _delete_middle(conn: Any) -> None:
    conn.execute("DELETE FROM operations WHERE seq = 3")


def _delete_and_renumber(conn: Any) -> None:
    conn.execute("DELETE FROM operations WHERE seq = 3")
    for seq in range(4, 11):
        conn.execute("UPDATE operations SET seq = ? WHERE seq = ?", (seq - 1, seq))


def _swap_rows(conn: Any) -> None:
    cols = "ts, kind, actor, compartment, parcel_id, body, prev_hash, hash"
    a = conn.execute(f"SELECT {cols} FROM operations WHERE seq = 4").fetchone()
    b = conn.execute(f"SELECT {cols} FROM operations WHERE seq = 5").fetchone()
    sets = ", ".join(f"{c.strip()} = ?" for c in cols.split(","))
    conn.execute(f"UPDATE operations SET {sets} WHERE seq = 4", b)
    conn.execute(f"UPDATE operations SET {sets} WHERE seq = 5", a)


def _truncate_tail(conn: Any) -> None:
    conn.execute("DELETE FROM operations WHERE seq = 10")


@pytest.mark.parametrize(("tamper", "first_broken"), [
    (_edit_body, 4), (_edit_actor, 6), (_edit_and_rehash, 6), (_delete_middle, 3),
    (_delete_and_renumber, 3), (_swap_rows, 4), (_truncate_tail, 10),
])
async def test_verify_reports_first_broken_link(db_path: Path, key: OplogKey,
                                                tamper: Callable[[Any], None],
                                                first_broken: int) -> None:
    await _build(db_path, key)
    _raw(db_path, key, tamper)
    log = await OpLog.open(db_path, key)
    try:
        result = await log.verify()
    finally:
        await log.close()
    assert not result.ok
    assert result.broken_seq == first_broken
    assert result.reason
    assert result.checked == first_broken - 1


async def test_untouched_chain_verifies(db_path: Path, key: OplogKey) -> None:
    await _build(db_path, key)
    log = await OpLog.open(db_path, key)
    try:
        result = await log.verify()
    finally:
        await log.close()
    assert result.ok
    assert result.checked == 10
    assert result.head_seq == 10


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(seq=st.integers(min_value=1, max_value=2**63 - 1), text=st.text(), other=st.text(),
       compartment=st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=3)),
       parcel_id=st.one_of(st.none(), st.text(), st.integers()))
def test_row_hash_is_the_hash_of_the_canonical_list(seq: int, text: str, other: str,
                                                    compartment: object,
                                                    parcel_id: object) -> None:
    # row_hash encodes rows of the expected types directly; any row, of those types or not
    # (a tampered column type), must hash exactly as dumps() of its columns always did.
    columns = [seq, text, "kind", other, compartment, parcel_id, '{"a":' + json.dumps(text) + "}",
               "0" * 64]
    expected = hashlib.sha256(dumps([CHAIN_VERSION, *columns]).encode("utf-8")).hexdigest()
    assert row_hash(*columns) == expected  # type: ignore[arg-type]
