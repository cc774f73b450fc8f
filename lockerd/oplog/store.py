"""OpLog, the log's one facade over writer, chain, outbox and readers; long because every caller's
entry point is here (the parts it composes are each small).

Every write is a job for the writer thread (lockerd.oplog.writer); a chain row is inserted only by
lockerd.oplog.chain.insert_operation, reached through `_chain_row` for appends and destruction
records alike; outbox rows come from lockerd.oplog.outbox; reads use lockerd.oplog.readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from lockerd.oplog import chain, sqlcipher
from lockerd.oplog import outbox as outbox_table
from lockerd.oplog.canonical import dumps, format_ts, parse_ts
from lockerd.oplog.chain import ChainBody
from lockerd.oplog.checkpoint import CheckpointPolicy
from lockerd.oplog.clockguard import ClockGuard
from lockerd.oplog.errors import DuplicateCommand, OplogError, WriterStopped
from lockerd.oplog.keys import OplogKey
from lockerd.oplog.models import (
    CommandRecord,
    Destruction,
    Operation,
    OutboxMessage,
    OutboxRow,
    VerifyResult,
)
from lockerd.oplog.readers import ReaderPool
from lockerd.oplog.schema import SCHEMA_VERSION, migrate
from lockerd.oplog.sqlcipher import Connection
from lockerd.oplog.writer import Writer

# SQL here is built only from code constants (table, column and where texts given by retention,
# never input); every value is a bound parameter. Hence the S608 exemptions below.

log = logging.getLogger(__name__)

T = TypeVar("T")
Mutation = Callable[[Connection], None]

COMMANDS_KEEP_DAYS = 7


def _open_conn(path: Path, key: OplogKey | None, *, cipher: bool, readonly: bool,
               cache_kib: int = sqlcipher.CACHE_KIB) -> Any:
    return sqlcipher.connect(path, None if key is None else key.raw, cipher=cipher,
                             cache_kib=cache_kib,
                             readonly=readonly)


class OpLog:
    """The encrypted, chained operation log. Open with `await OpLog.open(path, key)`.

    All writes go through one writer thread; reads use a small pool of read-only connections
    in an executor. No call blocks the event loop.
    """

    def __init__(self, path: Path, key: OplogKey | None, writer: Writer, readers: ReaderPool, *,
                 clock: Callable[[], datetime], cipher: bool, guard: ClockGuard) -> None:
        self.path = path
        #: records are refused while the clock reads earlier than this floor (clockguard.py)
        self.guard = guard
        self._key = key
        self._writer = writer
        self._readers = readers
        self._cipher = cipher
        self._clock = clock
        self._closed = False
        # The schema version the file had before this open migrated it (0: a new file); None
        # when it was already current. The daemon records it at start (daemon.started).
        self.migrated_from: int | None = None
        # Signs the head at an operation (seq, hash, ts) for `parcel.*` event envelopes; set by
        # the anchoring once the log's epoch is known (lockerd.oplog.anchoring). Runs on the
        # writer thread inside the operation's transaction.
        self.anchor_signer: Callable[[int, str, str], Mapping[str, Any]] | None = None

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def open(cls, path: Path | str, key: OplogKey | bytes | None, *, readers: int = 2,
                   clock: Callable[[], datetime] | None = None, cipher: bool = True,
                   checkpoints: CheckpointPolicy | None = None,
                   not_before: datetime | None = None) -> OpLog:
        """Open (or create) the log; raises WrongKey without touching an existing file.

        `cipher=False` uses plain sqlite3 with the same schema: for the benchmark only.
        `checkpoints` overrides when the WAL is folded into the file (tests). No record is
        stamped before the newest one nor before `not_before` (the daemon: the release date).
        """
        p = Path(path)
        k = OplogKey(key) if isinstance(key, bytes) else key
        if cipher and k is None:
            raise OplogError("an encrypted operation log needs a key")
        return await asyncio.to_thread(cls._open_sync, p, k, readers, clock, cipher,
                                       checkpoints=checkpoints, not_before=not_before)

    @classmethod
    def _open_sync(cls, path: Path, key: OplogKey | None, readers: int,
                   clock: Callable[[], datetime] | None, cipher: bool, *,
                   checkpoints: CheckpointPolicy | None, not_before: datetime | None) -> OpLog:
        conn = _open_conn(path, key, cipher=cipher, readonly=False,
                          cache_kib=sqlcipher.WRITER_CACHE_KIB)
        opened: list[Any] = [conn]
        try:
            found = migrate(conn)
            head = chain.read_head(conn)
            newest = conn.execute("SELECT ts FROM operations ORDER BY seq DESC LIMIT 1").fetchone()
            checkpointer = _open_conn(path, key, cipher=cipher, readonly=False)
            opened.append(checkpointer)
            rconns: list[Any] = []
            for _ in range(max(1, readers)):
                rconns.append(_open_conn(path, key, cipher=cipher, readonly=True))
                opened.append(rconns[-1])
            writer = Writer(conn, head, checkpointer, checkpoints)
        except BaseException:
            for c in opened:
                c.close()
            raise
        writer.start()
        log.info("operation log open: %s (head seq %d)", path, head[0])
        clock = clock or (lambda: datetime.now(UTC))
        guard = ClockGuard(None if newest is None else parse_ts(str(newest[0])),
                           release=not_before, clock=clock)
        store = cls(path, key, writer, ReaderPool(rconns), clock=clock, cipher=cipher, guard=guard)
        store.migrated_from = None if found == SCHEMA_VERSION else found
        return store

    async def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.stop()
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._readers.close)

    async def __aenter__(self) -> OpLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def writer_heartbeat(self) -> float:
        """time.monotonic() of the writer thread's last sign of life (feeds the watchdog)."""
        return self._writer.heartbeat

    def writer_timing(self) -> tuple[float, float, float]:
        """(running commit's s so far, 0 idle; last commit's s; s since it ended): slow writer?"""
        w = self._writer
        now = time.monotonic()
        busy = w.busy_since
        return (0.0 if busy is None else now - busy, w.last_commit_s, now - w.last_commit_end)

    @property
    def disk_full_s(self) -> float | None:
        """Seconds since appends began failing for a full disk; None while they go through."""
        since = self._writer.disk_full_since
        return None if since is None else time.monotonic() - since

    @property
    def writer_alive(self) -> bool:
        """False once the writer thread has stopped or died."""
        return self._writer.is_alive()

    @property
    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last committed operation as the writer knows it."""
        return self._writer.head

    @property
    def key_fingerprint(self) -> str | None:
        """Non-secret fingerprint of the current key (None for the plain benchmark store)."""
        return None if self._key is None else self._key.fingerprint

    def now(self) -> datetime:
        """The store's clock (injectable for tests)."""
        return self._clock()

    # ----------------------------------------------------------------- plumbing

    async def _submit(self, fn: Callable[[Any], T], *, exclusive: bool = False,
                      ride_s: float | None = None) -> T:
        if self._closed or not self._writer.is_alive():
            raise WriterStopped("operation log is closed" if self._closed
                                else f"operation log writer died: {self._writer.failed}")
        result: T = await asyncio.wrap_future(self._writer.submit(fn, exclusive=exclusive,
                                                                  ride_s=ride_s))
        return result

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on the writer in its own transaction, without a chain record.

        For bookkeeping that is not an operation (e.g. marking outbox rows sent); anything a
        regulator would ask about must go through append().
        """
        return await self._submit(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(conn)` on a pooled read-only connection in the read executor."""
        if self._closed:
            raise WriterStopped("operation log is closed")
        return await self._readers.run(fn)

    def _chain_row(self, conn: Any, ts: str, kind: str, actor: str, body: ChainBody, *,
                   compartment: int | None = None, parcel_id: str | None = None) -> Operation:
        """Insert the next chain row on the writer and move the head (every row comes here);
        refused (ClockNotSet) while the clock reads earlier than the guard's floor."""
        self.guard.check(parse_ts(ts))
        op = chain.insert_operation(conn, self._writer.head, ts=ts, kind=kind, actor=actor,
                                    body=body, compartment=compartment, parcel_id=parcel_id)
        self._writer.head = (op.seq, op.hash)
        return op

    # ----------------------------------------------------------------- the chain

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (), command: CommandRecord | None = None,
                     mutate: Mutation | None = None) -> Operation:
        """Record one operation, its outbox messages, command reply and domain writes atomically.

        Returns once the transaction is durably committed (synchronous=FULL): only then may a
        door move or a message leave (write-ahead rule). If anything fails nothing is recorded.
        A body with a personal field is refused (PersonalDataInChain) before anything is queued.
        """
        chain.validate_meta(kind, actor)
        encoded = ChainBody.encode(body)
        msgs = list(outbox)
        outbox_table.validate(msgs)
        remembered = None if command is None else (command, dumps(dict(command.reply)))

        def job(conn: Any) -> Operation:
            now = self._clock()
            ts = format_ts(now)
            op = self._chain_row(conn, ts, kind, actor, encoded, compartment=compartment,
                                 parcel_id=parcel_id)
            signer = self.anchor_signer
            anchor = None if signer is None or not any(
                str(m.payload.get("type", "")).startswith("parcel.") for m in msgs) \
                else signer(op.seq, op.hash, ts)
            for msg in msgs:
                outbox_table.enqueue(conn, msg, op.seq, now, ts=ts, anchor=anchor)
            if remembered is not None:
                _remember_command(conn, *remembered, ts, op.seq)
            if mutate is not None:
                mutate(conn)
            return op

        return await self._submit(job)

    async def enqueue(self, outbox: Sequence[OutboxMessage], *,
                      mutate: Mutation | None = None) -> None:
        """Queue messages without a chain row of their own (they name the current head).

        For replies whose cause is aggregated rather than chained one by one (refused carrier
        commands: lockerd/sync/refusals.py); the aggregate row is appended later with append().
        """
        msgs = list(outbox)
        outbox_table.validate(msgs)

        def job(conn: Any) -> None:
            now = self._clock()
            for msg in msgs:
                outbox_table.enqueue(conn, msg, self._writer.head[0], now, ts=format_ts(now))
            if mutate is not None:
                mutate(conn)

        await self._submit(job)

    async def operations(self, *, since: datetime | None = None, until: datetime | None = None,
                         kinds: Iterable[str] | None = None, compartment: int | None = None,
                         after_seq: int = 0, limit: int = 1000, before_seq: int | None = None,
                         newest_first: bool = False) -> list[Operation]:
        """Operations in seq order (or newest first), filtered by time [since, until), kinds,
        compartment and seq (after_seq, before_seq)."""
        sql, args = chain.select_operations(
            since=since, until=until, kinds=kinds, compartment=compartment, after_seq=after_seq,
            limit=limit, before_seq=before_seq, newest_first=newest_first)
        rows = await self.read(lambda c: c.execute(sql, args).fetchall())
        return [chain.op_from_row(r) for r in rows]

    async def verify(self) -> VerifyResult:
        """Walk the whole chain and report the first broken link (`read` is one read
        transaction: the walk and the tail checks see one snapshot)."""
        return await self.read(chain.verify_chain)

    # ----------------------------------------------------------------- outbox

    async def outbox_pending(self, limit: int = 100, after_id: int | None = None
                             ) -> list[OutboxRow]:
        """Unsent outbox rows in id order (commit order), after `after_id` when given."""
        return await self.read(lambda c: outbox_table.pending(c, limit, after_id))

    async def outbox_mark_sent(self, ids: Sequence[int], *, within_s: float | None = None) -> int:
        """Mark rows as published (broker acknowledged); returns how many changed.

        With `within_s` the update rides the next operation's transaction when one commits
        within that time, and commits on its own after it otherwise: an acknowledgement costs
        no fsync of its own while the cabinet is busy. A mark lost in a crash only means the
        row is published again (at-least-once; carriers keep the last seq).
        """
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        ts = format_ts(self._clock())
        return await self._submit(lambda c: outbox_table.mark_sent(c, id_list, ts),
                                  ride_s=within_s)

    @property
    def checkpoints(self) -> int:
        """Completed background WAL checkpoints since the log was opened."""
        return self._writer.checkpointer.checkpoints

    @property
    def commits(self) -> int:
        """Write transactions committed since the log was opened."""
        return self._writer.commits

    async def outbox_stats(self) -> tuple[int, datetime | None]:
        """(pending count, created_at of the oldest pending row)."""
        return await self.read(outbox_table.stats)

    async def outbox_prune(self, sent_before: datetime, *, actor: str = "lockerd") -> int:
        """Delete rows sent before the cutoff (their payloads may hold personal data).

        A non-empty prune is a destruction and is recorded in the chain.
        """
        return await self.destroy(
            "outbox_sent", "outbox", "sent_at IS NOT NULL AND sent_at < ?",
            (format_ts(sent_before),), range_column="created_at", actor=actor)

    # ----------------------------------------------------------------- secrets and commands

    async def secret(self, name: str, nbytes: int = 32) -> bytes:
        """A random secret kept in the log (created on first use): keys of other stores."""
        def job(conn: Any) -> bytes:
            row = conn.execute("SELECT value FROM secrets WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return bytes(row[0])
            value = os.urandom(nbytes)
            conn.execute("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?)",
                         (name, value, format_ts(self.now())))
            return value

        return await self.write(job)

    async def command_reply(self, carrier: str, cmd_id: str) -> dict[str, Any] | None:
        """The first reply given to this carrier's command id, if it is still remembered."""
        row = await self.read(lambda c: c.execute(
            "SELECT reply FROM commands WHERE carrier = ? AND cmd_id = ?",
            (carrier, cmd_id)).fetchone())
        return None if row is None else dict(json.loads(row[0]))

    async def commands_prune(self, before: datetime | None = None, *,
                             actor: str = "lockerd") -> int:
        """Forget command ids older than 7 days (docs/mqtt.md) or the given cutoff."""
        cutoff = before or (self._clock() - timedelta(days=COMMANDS_KEEP_DAYS))
        return await self.destroy("command_ids", "commands", "received_at < ?",
                                  (format_ts(cutoff),), range_column="received_at", actor=actor)

    # ----------------------------------------------------------------- destruction

    async def destroy(self, record_class: str, table: str, where: str, args: Sequence[Any], *,
                      range_column: str, null_columns: Sequence[str] = (),
                      set_values: Mapping[str, Any] | None = None,
                      actor: str = "lockerd") -> int:
        """Delete rows of `table` matching `where` (or null `null_columns`), and record it.

        The destruction record (class, count, time range of the rows, when, by whom) is
        appended to the chain in the same transaction, so the chain still verifies and the
        purge itself is auditable (Art. 26, 37). Nothing is recorded when nothing matched.
        Table, column and where texts are code constants, never input.
        """
        chain.validate_meta("oplog.destroyed", actor)

        def job(conn: Any) -> int:
            stats = conn.execute(f"SELECT count(*), min({range_column}), max({range_column}) "  # noqa: S608
                                 f"FROM {table} WHERE {where}", list(args)).fetchone()
            count = int(stats[0])
            if count == 0:
                return 0
            if not null_columns and not set_values:
                conn.execute(f"DELETE FROM {table} WHERE {where}", list(args))  # noqa: S608
            else:
                extra = dict(set_values or {})
                sets = [f"{c} = NULL" for c in null_columns] + [f"{c} = ?" for c in extra]
                conn.execute(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}",  # noqa: S608
                             [*extra.values(), *args])
            info = Destruction(record_class, count, stats[1], stats[2],
                               {"action": "nulled" if null_columns else "deleted"})
            self._record_destruction(conn, info, actor)
            return count

        return await self._submit(job)

    def _record_destruction(self, conn: Any, info: Destruction, actor: str) -> Operation:
        ts = format_ts(self._clock())
        body = ChainBody.encode({"class": info.record_class, "count": info.count,
                                 "range_from": info.range_from, "range_to": info.range_to,
                                 **info.extra})
        op = self._chain_row(conn, ts, "oplog.destroyed", actor, body)
        conn.execute("INSERT INTO destructions (op_seq, record_class, count, range_from, "
                     "range_to, at, by_actor) VALUES (?,?,?,?,?,?,?)",
                     (op.seq, info.record_class, info.count, info.range_from, info.range_to, ts,
                      actor))
        return op

    # ----------------------------------------------------------------- keys

    async def rekey(self, new_key: OplogKey, *, actor: str) -> Operation:
        """Re-encrypt the database with `new_key` (PRAGMA rekey) and record it in the chain.

        Readers are drained and reopened with the new key; the record is committed under the
        new key, naming both key fingerprints (never the keys).
        """
        if not self._cipher or self._key is None:
            raise OplogError("rekey needs an encrypted log")
        old = self._key
        readers = await asyncio.to_thread(self._readers.drain)
        try:
            def do_rekey(conn: Any) -> None:
                with self._writer.ckpt_lock:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    sqlcipher.rekey(conn, new_key.raw)
                self._writer.replace_checkpointer(
                    _open_conn(self.path, new_key, cipher=True, readonly=False))

            await self._submit(do_rekey, exclusive=True)
        except BaseException:
            self._readers.refill(readers)
            raise
        self._key = new_key
        for conn in readers:
            with contextlib.suppress(Exception):
                conn.close()
        fresh = await asyncio.to_thread(
            lambda: [_open_conn(self.path, new_key, cipher=True, readonly=True)
                     for _ in range(self._readers.size)])
        self._readers.refill(fresh)
        log.warning("operation log rekeyed by %s (key %s -> %s)", actor, old.fingerprint,
                    new_key.fingerprint)
        return await self.append("oplog.rekeyed", actor=actor,
                                 body={"old_key": old.fingerprint, "new_key": new_key.fingerprint})


def _remember_command(conn: Any, command: CommandRecord, reply_json: str, ts: str,
                      op_seq: int) -> None:
    """Keep the first reply to a carrier's command id; a second insert is a DuplicateCommand."""
    try:
        conn.execute("INSERT INTO commands (carrier, cmd_id, reply, received_at, op_seq) "
                     "VALUES (?,?,?,?,?)", (command.carrier, command.cmd_id, reply_json, ts, op_seq))
    except sqlite3.IntegrityError as exc:
        raise DuplicateCommand(command.carrier, command.cmd_id) from exc
    except Exception as exc:
        # sqlcipher3 raises its own IntegrityError class, not sqlite3's
        if "UNIQUE" in str(exc):
            raise DuplicateCommand(command.carrier, command.cmd_id) from exc
        raise


__all__ = ["Connection", "DuplicateCommand", "Mutation", "OpLog"]
