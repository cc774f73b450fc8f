"""The operation log store: SQLCipher file, one writer thread (group commit), pooled readers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from lockerd.oplog import canonical
from lockerd.oplog.canonical import GENESIS_HASH, dumps, format_ts, parse_ts, row_hash
from lockerd.oplog.errors import OplogError, PersonalDataInChain, WriterStopped, WrongKey
from lockerd.oplog.keys import OplogKey
from lockerd.oplog.models import (
    CommandRecord,
    Destruction,
    Operation,
    OutboxMessage,
    OutboxRow,
    VerifyResult,
)
from lockerd.oplog.schema import migrate

# SQL here is built only from module constants and column/table names chosen in this file
# (never from input); every value is a bound parameter. Hence the S608 exemptions below.

log = logging.getLogger(__name__)

T = TypeVar("T")
# sqlcipher3's connection has exactly the sqlite3 API; typed as sqlite3's for callers.
Connection = sqlite3.Connection
Mutation = Callable[[Connection], None]

# Keys that must never appear in a chain body: personal data lives in domain tables, whose
# columns retention can null out; the chain is immutable (its hashes cover the body).
PERSONAL_KEYS = frozenset({
    "phone", "recipient_phone", "sender_phone", "mobile", "name", "recipient_name",
    "sender_name", "address", "id_number", "id_card", "waybill", "code", "pickup_code", "pin",
    "password", "key", "declared_contents",
})

MAX_BATCH = 64
# Checkpoints (copying WAL pages into the database: decrypt + re-encrypt with SQLCipher) run on
# a separate thread so commits do not pay for them; the writer checkpoints itself only if the
# WAL grows past this many pages (the checkpointer is stuck or readers pin the WAL).
CHECKPOINT_EVERY_S = 0.25
WRITER_AUTOCHECKPOINT = 8192
COMMANDS_KEEP_DAYS = 7


def _check_body(value: Any, path: str = "body") -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            if str(k).lower() in PERSONAL_KEYS:
                raise PersonalDataInChain(
                    f"{path}.{k}: personal field in an operation body; store it in a domain "
                    "table (via mutate) and reference it by parcel id")
            _check_body(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _check_body(v, f"{path}[{i}]")


def _cipher_module() -> ModuleType:
    # Imported lazily so the plain-sqlite benchmark and tools that never open the log
    # do not load the SQLCipher extension.
    from sqlcipher3 import dbapi2

    return dbapi2  # type: ignore[no-any-return]


def _connect(path: Path, key: OplogKey | None, *, cipher: bool, readonly: bool) -> Any:
    """Open one connection and prove the key works before anything writes to the file."""
    module = _cipher_module() if cipher else sqlite3
    conn = module.connect(str(path), isolation_level=None, check_same_thread=False,
                          timeout=30.0)
    try:
        if cipher:
            assert key is not None
            # SQLCipher logs decrypt failures to stderr itself; the WrongKey below says it once.
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(f"PRAGMA key = {key.pragma_literal}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except module.DatabaseError as exc:
            raise WrongKey(f"{path}: cannot decrypt the operation log with this key "
                           f"(wrong key, or not a lockerd operation log): {exc}") from None
        conn.execute("PRAGMA temp_store = MEMORY")  # no plaintext temp files on disk
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("PRAGMA query_only = ON")
        else:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise OplogError(f"{path}: cannot switch to WAL (got {mode})")
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass(slots=True)
class _Job:
    fn: Callable[[Any], Any]
    future: concurrent.futures.Future[Any]
    exclusive: bool = False  # runs outside a transaction (rekey, checkpoint)


_STOP = object()


class _Writer(threading.Thread):
    """Owns the only write connection; commits queued jobs in groups (one fsync per group).

    Each job runs in its own SAVEPOINT, so a failing job rolls back alone while the others
    of its group still commit; a job's future resolves only after COMMIT returned.
    """

    def __init__(self, conn: Any, head: tuple[int, str], checkpointer: Any) -> None:
        super().__init__(name="oplog-writer", daemon=True)
        self.conn = conn
        self._ckpt_conn = checkpointer
        self._ckpt_stop = threading.Event()
        self.ckpt_lock = threading.Lock()  # held while checkpointing; rekey swaps the conn
        self._ckpt = threading.Thread(target=self._checkpoint_loop, name="oplog-checkpoint",
                                      daemon=True)
        self.head = head
        self.queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self.heartbeat = time.monotonic()
        self.commits = 0
        self.failed: BaseException | None = None

    def run(self) -> None:
        self._ckpt.start()
        try:
            self._loop()
        except BaseException as exc:  # the thread must report why it died
            self.failed = exc
            log.critical("operation log writer died: %s", exc, exc_info=True)
        finally:
            self._fail_queued()
            self._ckpt_stop.set()
            self._ckpt.join()
            with contextlib.suppress(Exception):
                self.conn.close()

    def replace_checkpointer(self, conn: Any) -> None:
        """Swap in a connection opened with a new key (after PRAGMA rekey)."""
        with self.ckpt_lock:
            old, self._ckpt_conn = self._ckpt_conn, conn
        with contextlib.suppress(Exception):
            old.close()

    def _checkpoint_loop(self) -> None:
        failing = False
        try:
            while not self._ckpt_stop.wait(CHECKPOINT_EVERY_S):
                try:
                    with self.ckpt_lock:
                        self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except Exception as exc:
                    if not failing:
                        log.warning("background WAL checkpoint failed: %s", exc)
                    failing = True
                    continue
                if failing:
                    log.info("background WAL checkpoint works again")
                failing = False
        finally:
            with contextlib.suppress(Exception):
                self._ckpt_conn.close()

    def _loop(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=0.5)
            except queue.Empty:
                self.heartbeat = time.monotonic()
                continue
            if first is _STOP:
                return
            batch: list[_Job] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            group: list[_Job] = []
            for job in batch:
                if job.exclusive:
                    self._commit_group(group)
                    group = []
                    self._run_exclusive(job)
                else:
                    group.append(job)
            self._commit_group(group)
            self.heartbeat = time.monotonic()
            if stop:
                return

    def _run_exclusive(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.fn(self.conn)
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    def _commit_group(self, group: list[_Job]) -> None:
        live = [j for j in group if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        head_before = self.head
        outcomes: list[tuple[_Job, Any, BaseException | None]] = []
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in live:
                snapshot = self.head
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    self.head = snapshot
                    outcomes.append((job, None, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            with contextlib.suppress(Exception):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            self.head = head_before
            log.error("operation log commit failed: %s", exc)
            failure = OplogError(f"commit failed: {exc}")
            for job in live:
                job.future.set_exception(failure)
            return
        self.commits += 1
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    def _fail_queued(self) -> None:
        while True:
            try:
                job = self.queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(job, _Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(WriterStopped("operation log is closed"))


def _op_from_row(row: Sequence[Any]) -> Operation:
    seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, hsh = row
    return Operation(seq=seq, ts=parse_ts(ts), kind=kind, actor=actor, body=_loads(body),
                     compartment=compartment, parcel_id=parcel_id, prev_hash=prev_hash, hash=hsh)


def _loads(text: str | bytes) -> Any:
    return json.loads(text)


OP_COLUMNS = "seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, hash"


class OpLog:
    """The encrypted, chained operation log. Open with `await OpLog.open(path, key)`.

    All writes go through one writer thread; reads use a small pool of read-only connections
    in an executor. No call blocks the event loop.
    """

    def __init__(self, path: Path, key: OplogKey | None, writer: _Writer, readers: list[Any], *,
                 clock: Callable[[], datetime], cipher: bool) -> None:
        self.path = path
        self._key = key
        self._writer = writer
        self._cipher = cipher
        self._clock = clock
        self._pool: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._nreaders = len(readers)
        for conn in readers:
            self._pool.put(conn)
        self._read_exec = concurrent.futures.ThreadPoolExecutor(
            max_workers=len(readers), thread_name_prefix="oplog-read")
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    @classmethod
    async def open(cls, path: Path | str, key: OplogKey | bytes | None, *, readers: int = 2,
                   clock: Callable[[], datetime] | None = None, cipher: bool = True) -> OpLog:
        """Open (or create) the log; raises WrongKey without touching an existing file.

        `cipher=False` uses plain sqlite3 with the same schema: for the benchmark only.
        """
        p = Path(path)
        k = OplogKey(key) if isinstance(key, bytes) else key
        if cipher and k is None:
            raise OplogError("an encrypted operation log needs a key")
        return await asyncio.to_thread(cls._open_sync, p, k, readers, clock, cipher)

    @classmethod
    def _open_sync(cls, path: Path, key: OplogKey | None, readers: int,
                   clock: Callable[[], datetime] | None, cipher: bool) -> OpLog:
        # Create a new file 0600 ourselves: SQLite gives its -wal and -shm the main file's mode.
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        conn = _connect(path, key, cipher=cipher, readonly=False)
        opened: list[Any] = [conn]
        try:
            migrate(conn)
            row = conn.execute("SELECT seq, hash FROM operations ORDER BY seq DESC LIMIT 1"
                               ).fetchone()
            head = (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)
            conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT}")
            conn.execute("PRAGMA journal_size_limit = 8388608")  # WAL shrinks back to 8 MiB
            checkpointer = _connect(path, key, cipher=cipher, readonly=False)
            opened.append(checkpointer)
            rconns: list[Any] = []
            for _ in range(max(1, readers)):
                rconns.append(_connect(path, key, cipher=cipher, readonly=True))
                opened.append(rconns[-1])
        except BaseException:
            for c in opened:
                c.close()
            raise
        writer = _Writer(conn, head, checkpointer)
        writer.start()
        log.info("operation log open: %s (head seq %d)", path, head[0])
        return cls(path, key, writer, rconns, clock=clock or (lambda: datetime.now(UTC)),
                   cipher=cipher)

    async def close(self) -> None:
        """Finish queued writes, stop the writer, close every connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.queue.put(_STOP)
        await asyncio.to_thread(self._writer.join)
        await asyncio.to_thread(self._read_exec.shutdown, True)
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                break

    async def __aenter__(self) -> OpLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def writer_heartbeat(self) -> float:
        """time.monotonic() of the writer thread's last sign of life (feeds the watchdog)."""
        return self._writer.heartbeat

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

    async def _submit(self, fn: Callable[[Any], T], *, exclusive: bool = False) -> T:
        if self._closed or not self._writer.is_alive():
            raise WriterStopped("operation log is closed" if self._closed
                                else f"operation log writer died: {self._writer.failed}")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._writer.queue.put(_Job(fn, fut, exclusive))
        return await asyncio.wrap_future(fut)

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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_exec, self._with_reader, fn)

    def _with_reader(self, fn: Callable[[Any], T]) -> T:
        conn = self._pool.get()
        try:
            return fn(conn)
        finally:
            self._pool.put(conn)

    # ----------------------------------------------------------------- the chain

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (), command: CommandRecord | None = None,
                     mutate: Mutation | None = None) -> Operation:
        """Record one operation, its outbox messages, command reply and domain writes atomically.

        Returns once the transaction is durably committed (synchronous=FULL): only then may a
        door move or a message leave (write-ahead rule). If anything fails nothing is recorded.
        """
        if not kind or len(kind) > 64:
            raise ValueError("kind must be 1-64 characters")
        if not actor or len(actor) > 128:
            raise ValueError("actor must be 1-128 characters")
        _check_body(body)
        body_json = dumps(dict(body))
        msgs = list(outbox)
        for msg in msgs:
            if msg.qos not in (0, 1, 2):
                raise ValueError(f"qos {msg.qos} is not 0, 1 or 2")
            if not msg.stream or not msg.topic:
                raise ValueError("outbox messages need a stream and a topic")
        reply_json = dumps(dict(command.reply)) if command is not None else None

        def job(conn: Any) -> Operation:
            seq = self._writer.head[0] + 1
            prev = self._writer.head[1]
            now = self._clock()
            ts = format_ts(now)
            digest = row_hash(seq, ts, kind, actor, compartment, parcel_id, body_json, prev)
            conn.execute(f"INSERT INTO operations ({OP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
                         (seq, ts, kind, actor, compartment, parcel_id, body_json, prev, digest))
            for msg in msgs:
                self._insert_outbox(conn, msg, seq, now, ts=ts)
            if command is not None:
                try:
                    conn.execute("INSERT INTO commands (carrier, cmd_id, reply, received_at, op_seq)"
                                 " VALUES (?,?,?,?,?)",
                                 (command.carrier, command.cmd_id, reply_json, ts, seq))
                except sqlite3.IntegrityError as exc:
                    raise DuplicateCommand(command.carrier, command.cmd_id) from exc
                except Exception as exc:
                    if "UNIQUE" in str(exc):
                        raise DuplicateCommand(command.carrier, command.cmd_id) from exc
                    raise
            if mutate is not None:
                mutate(conn)
            self._writer.head = (seq, digest)
            return Operation(seq=seq, ts=parse_ts(ts), kind=kind, actor=actor,
                             body=_loads(body_json), compartment=compartment,
                             parcel_id=parcel_id, prev_hash=prev, hash=digest)

        return await self._submit(job)

    @staticmethod
    def _insert_outbox(conn: Any, msg: OutboxMessage, op_seq: int, now: datetime, *,
                       ts: str) -> None:
        payload = dict(msg.payload)
        stream_seq: int | None = None
        if msg.event:
            row = conn.execute("SELECT last_seq FROM outbox_streams WHERE stream = ?",
                               (msg.stream,)).fetchone()
            stream_seq = (int(row[0]) if row else 0) + 1
            conn.execute("INSERT INTO outbox_streams (stream, last_seq) VALUES (?, ?) "
                         "ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq",
                         (msg.stream, stream_seq))
            payload["seq"] = stream_seq
            payload.setdefault("event_id", uuid.uuid4().hex)
            payload.setdefault("v", 1)
            payload.setdefault("ts", now.astimezone(UTC).isoformat(timespec="milliseconds")
                               .replace("+00:00", "Z"))
        data = dumps(payload).encode("utf-8")
        conn.execute("INSERT INTO outbox (stream, seq, topic, payload, qos, retain, created_at, "
                     "op_seq) VALUES (?,?,?,?,?,?,?,?)",
                     (msg.stream, stream_seq, msg.topic, data, msg.qos, int(msg.retain), ts,
                      op_seq))

    async def operations(self, *, since: datetime | None = None, until: datetime | None = None,
                         kinds: Iterable[str] | None = None, compartment: int | None = None,
                         after_seq: int = 0, limit: int = 1000) -> list[Operation]:
        """Operations in seq order, filtered by time [since, until), kinds and compartment."""
        where = ["seq > ?"]
        args: list[Any] = [after_seq]
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
               "ORDER BY seq LIMIT ?")
        rows = await self.read(lambda c: c.execute(sql, args).fetchall())
        return [_op_from_row(r) for r in rows]

    async def verify(self) -> VerifyResult:
        """Walk the whole chain and report the first broken link."""
        return await self.read(verify_chain)

    # ----------------------------------------------------------------- outbox

    async def outbox_pending(self, limit: int = 100, after_id: int | None = None
                             ) -> list[OutboxRow]:
        """Unsent outbox rows in id order (commit order), after `after_id` when given."""
        def q(conn: Any) -> list[Any]:
            return list(conn.execute(
                "SELECT id, stream, seq, topic, payload, qos, retain, created_at FROM outbox "
                "WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after_id or 0, limit)).fetchall())

        return [OutboxRow(id=r[0], stream=r[1], seq=r[2], topic=r[3], payload_bytes=bytes(r[4]),
                          qos=r[5], retain=bool(r[6]), created_at=parse_ts(r[7]))
                for r in await self.read(q)]

    async def outbox_mark_sent(self, ids: Sequence[int]) -> int:
        """Mark rows as published (broker acknowledged); returns how many changed."""
        id_list = [int(i) for i in ids]
        if not id_list:
            return 0
        ts = format_ts(self._clock())

        def job(conn: Any) -> int:
            changed = 0
            for start in range(0, len(id_list), 500):
                chunk = id_list[start:start + 500]
                cur = conn.execute(f"UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND id "  # noqa: S608
                                   f"IN ({','.join('?' * len(chunk))})", [ts, *chunk])
                changed += cur.rowcount
            return changed

        return await self._submit(job)

    async def outbox_stats(self) -> tuple[int, datetime | None]:
        """(pending count, created_at of the oldest pending row)."""
        row = await self.read(lambda c: c.execute(
            "SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL").fetchone())
        return int(row[0]), (parse_ts(row[1]) if row[1] else None)

    async def outbox_prune(self, sent_before: datetime, *, actor: str = "lockerd") -> int:
        """Delete rows sent before the cutoff (their payloads may hold personal data).

        A non-empty prune is a destruction and is recorded in the chain.
        """
        return await self.destroy(
            "outbox_sent", "outbox", "sent_at IS NOT NULL AND sent_at < ?",
            (format_ts(sent_before),), range_column="created_at", actor=actor)

    # ----------------------------------------------------------------- commands

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
        return None if row is None else dict(_loads(row[0]))

    async def commands_prune(self, before: datetime | None = None, *,
                             actor: str = "lockerd") -> int:
        """Forget command ids older than 7 days (DESIGN section 4) or the given cutoff."""
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
            self._append_destruction(conn, info, actor)
            return count

        return await self._submit(job)

    def _append_destruction(self, conn: Any, info: Destruction, actor: str) -> Operation:
        seq = self._writer.head[0] + 1
        prev = self._writer.head[1]
        ts = format_ts(self._clock())
        body = {"class": info.record_class, "count": info.count, "range_from": info.range_from,
                "range_to": info.range_to, **info.extra}
        body_json = dumps(body)
        digest = row_hash(seq, ts, "oplog.destroyed", actor, None, None, body_json, prev)
        conn.execute(f"INSERT INTO operations ({OP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",  # noqa: S608
                     (seq, ts, "oplog.destroyed", actor, None, None, body_json, prev, digest))
        conn.execute("INSERT INTO destructions (op_seq, record_class, count, range_from, "
                     "range_to, at, by_actor) VALUES (?,?,?,?,?,?,?)",
                     (seq, info.record_class, info.count, info.range_from, info.range_to, ts,
                      actor))
        self._writer.head = (seq, digest)
        return Operation(seq, parse_ts(ts), "oplog.destroyed", actor, body, None, None, prev,
                         digest)

    # ----------------------------------------------------------------- keys

    async def rekey(self, new_key: OplogKey, *, actor: str) -> Operation:
        """Re-encrypt the database with `new_key` (PRAGMA rekey) and record it in the chain.

        Readers are drained and reopened with the new key; the record is committed under the
        new key, naming both key fingerprints (never the keys).
        """
        if not self._cipher or self._key is None:
            raise OplogError("rekey needs an encrypted log")
        old = self._key
        readers = await asyncio.to_thread(self._drain_readers)
        try:
            def do_rekey(conn: Any) -> None:
                with self._writer.ckpt_lock:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    conn.execute(f"PRAGMA rekey = {new_key.pragma_literal}")
                    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                self._writer.replace_checkpointer(
                    _connect(self.path, new_key, cipher=True, readonly=False))

            await self._submit(do_rekey, exclusive=True)
        except BaseException:
            for conn in readers:
                self._pool.put(conn)
            raise
        self._key = new_key
        for conn in readers:
            with contextlib.suppress(Exception):
                conn.close()
        fresh = await asyncio.to_thread(
            lambda: [_connect(self.path, new_key, cipher=True, readonly=True)
                     for _ in range(self._nreaders)])
        for conn in fresh:
            self._pool.put(conn)
        log.warning("operation log rekeyed by %s (key %s -> %s)", actor, old.fingerprint,
                    new_key.fingerprint)
        return await self.append("oplog.rekeyed", actor=actor,
                                 body={"old_key": old.fingerprint, "new_key": new_key.fingerprint})

    def _drain_readers(self) -> list[Any]:
        return [self._pool.get() for _ in range(self._nreaders)]


class DuplicateCommand(OplogError):
    """A command id was already remembered for this carrier (a replay raced the first reply)."""

    def __init__(self, carrier: str, cmd_id: str) -> None:
        super().__init__(f"command {cmd_id!r} of carrier {carrier!r} is already recorded")
        self.carrier = carrier
        self.cmd_id = cmd_id


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
    head = expected_seq - 1
    for table in ("outbox", "commands", "destructions"):
        row = conn.execute(f"SELECT max(op_seq) FROM {table}").fetchone()  # noqa: S608
        if row[0] is not None and int(row[0]) > head:
            return VerifyResult(False, checked, head, prev, head + 1,
                                f"{table} refers to operation {row[0]} beyond the head "
                                f"{head} (operations were removed from the end)")
    return VerifyResult(True, checked, head, prev)


__all__ = ["Connection", "DuplicateCommand", "Mutation", "OpLog", "canonical", "verify_chain"]
