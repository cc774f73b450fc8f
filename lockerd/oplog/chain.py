"""The hash chain: the guarded body encoding, the one function that inserts a chain row, and verify.

Every operation row carries the hash of the previous one (canonical.row_hash), so an edit,
deletion, reorder or truncation shows up when the chain is walked. Appends and destruction
records both go through `insert_operation`; nothing else writes the operations table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lockerd.oplog.canonical import GENESIS_HASH, dumps, format_ts, parse_ts, row_hash
from lockerd.oplog.errors import PersonalDataInChain
from lockerd.oplog.models import Operation, VerifyResult
from lockerd.privacy import chain_violations

# SQL here is built only from the module constant below and table names chosen in this file
# (never from input); every value is a bound parameter. Hence the S608 exemptions.
OP_COLUMNS = "seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, hash"
# Tables whose rows name the operation that wrote them (checked against the head by verify).
REFERRING_TABLES = ("outbox", "commands", "destructions")

#: verify runs in a reader thread and holds the GIL while it hashes; every this many rows it
#: lets go so the event loop does not wait for the interpreter's 5 ms switch interval.
YIELD_ROWS = 256

Head = tuple[int, str]  # (seq, hash) of the newest operation; (0, GENESIS_HASH) when empty


@dataclass(frozen=True, slots=True)
class ChainBody:
    """An operation body that passed the personal-data guard, in canonical JSON.

    Only `encode` makes one, so a row cannot be inserted with an unchecked body.
    """

    json: str

    @classmethod
    def encode(cls, body: Mapping[str, Any]) -> ChainBody:
        """Refuse personal fields (lockerd.privacy registry), then encode canonically."""
        bad = chain_violations(body)
        if bad:
            raise PersonalDataInChain(
                f"{', '.join(bad)}: personal field in an operation body; store it in a domain "
                "table (via mutate) and reference it by parcel id")
        return cls(dumps(dict(body)))


def validate_meta(kind: str, actor: str) -> None:
    """Kind and actor are short identifiers (the schema does not limit them)."""
    if not kind or len(kind) > 64:
        raise ValueError("kind must be 1-64 characters")
    if not actor or len(actor) > 128:
        raise ValueError("actor must be 1-128 characters")


def insert_operation(conn: Any, head: Head, *, ts: str, kind: str, actor: str,
                     body: ChainBody, compartment: int | None = None,
                     parcel_id: str | None = None) -> Operation:
    """Insert the row after `head` and return it; the caller moves its head to (seq, hash).

    Runs inside the writer's transaction: if the transaction rolls back, so does the row.
    """
    validate_meta(kind, actor)
    seq, prev = head[0] + 1, head[1]
    digest = row_hash(seq, ts, kind, actor, compartment, parcel_id, body.json, prev)
    conn.execute(f"INSERT INTO operations ({OP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
                 (seq, ts, kind, actor, compartment, parcel_id, body.json, prev, digest))
    return Operation(seq=seq, ts=parse_ts(ts), kind=kind, actor=actor, body=json.loads(body.json),
                     compartment=compartment, parcel_id=parcel_id, prev_hash=prev, hash=digest)


def select_operations(*, since: datetime | None, until: datetime | None,
                      kinds: Iterable[str] | None, compartment: int | None, after_seq: int,
                      limit: int, before_seq: int | None, newest_first: bool
                      ) -> tuple[str, list[Any]]:
    """The SELECT (and its arguments) of OpLog.operations: rows of OP_COLUMNS, filtered by
    time [since, until), kinds, compartment and seq, in seq order or newest first."""
    where = ["seq > ?"] + ([] if before_seq is None else ["seq < ?"])
    args: list[Any] = [after_seq] + ([] if before_seq is None else [before_seq])
    if since is not None:
        where.append("ts >= ?")
        args.append(format_ts(since))
    if until is not None:
        where.append("ts < ?")
        args.append(format_ts(until))
    kind_list = list(kinds) if kinds is not None else None
    if kind_list:
        where.append(f"kind IN ({','.join('?' * len(kind_list))})")
        args.extend(kind_list)
    if compartment is not None:
        where.append("compartment = ?")
        args.append(compartment)
    args.append(limit)
    sql = (f"SELECT {OP_COLUMNS} FROM operations WHERE {' AND '.join(where)} "  # noqa: S608
           f"ORDER BY seq{' DESC' if newest_first else ''} LIMIT ?")
    return sql, args


def read_head(conn: Any) -> Head:
    """The newest operation's (seq, hash), or (0, GENESIS_HASH) for an empty chain."""
    row = conn.execute("SELECT seq, hash FROM operations ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def op_from_row(row: Sequence[Any]) -> Operation:
    """An Operation from a row selected with OP_COLUMNS."""
    seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, digest = row
    return Operation(seq=seq, ts=parse_ts(ts), kind=kind, actor=actor, body=json.loads(body),
                     compartment=compartment, parcel_id=parcel_id, prev_hash=prev_hash,
                     hash=digest)


def verify_chain(conn: Any) -> VerifyResult:
    """Walk the operations table in seq order checking numbering, links and hashes.

    Also checks that nothing refers to an operation beyond the head (a truncated tail).
    """
    expected_seq = 1
    prev = GENESIS_HASH
    checked = 0
    cur = conn.execute(f"SELECT {OP_COLUMNS} FROM operations ORDER BY seq")  # noqa: S608
    for seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, digest in cur:
        if seq != expected_seq:
            return VerifyResult(False, checked, expected_seq - 1, prev, expected_seq,
                                f"operation {expected_seq} is missing (next found: {seq})")
        if prev_hash != prev:
            return VerifyResult(False, checked, seq - 1, prev, seq,
                                "prev_hash does not match the previous operation's hash "
                                "(a row was removed, reordered or edited)")
        if row_hash(seq, ts, kind, actor, compartment, parcel_id, body, prev_hash) != digest:
            return VerifyResult(False, checked, seq - 1, prev, seq,
                                "hash does not match the row's contents (the row was edited)")
        prev = digest
        expected_seq += 1
        checked += 1
        if not checked % YIELD_ROWS:
            time.sleep(0)  # let the event loop have the GIL if it waits (~1-2 ms of hashing)
    head = expected_seq - 1
    for table in REFERRING_TABLES:
        row = conn.execute(f"SELECT max(op_seq) FROM {table}").fetchone()  # noqa: S608
        if row[0] is not None and int(row[0]) > head:
            return VerifyResult(False, checked, head, prev, head + 1,
                                f"{table} refers to operation {row[0]} beyond the head "
                                f"{head} (operations were removed from the end)")
    return VerifyResult(True, checked, head, prev)
