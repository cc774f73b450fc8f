"""The operation log's writer thread: the only write connection, group commit, background checkpoints.

Each queued job runs in its own SAVEPOINT inside one BEGIN IMMEDIATE ... COMMIT per group, so a
failing job rolls back alone while the others of its group still commit with one fsync; a job's
future resolves only after COMMIT returned (synchronous = FULL), which is what the write-ahead
rule waits for.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lockerd.oplog.chain import Head
from lockerd.oplog.errors import OplogError, WriterStopped

log = logging.getLogger(__name__)

MAX_BATCH = 64
# Checkpoints (copying WAL pages into the database: decrypt + re-encrypt with SQLCipher) run on
# a separate thread so commits do not pay for them; the writer checkpoints itself only if the
# WAL grows past WRITER_AUTOCHECKPOINT pages (the checkpointer is stuck or readers pin the WAL).
CHECKPOINT_EVERY_S = 0.25
WRITER_AUTOCHECKPOINT = 8192


@dataclass(slots=True)
class Job:
    """One unit of work for the writer and the future its caller awaits."""

    fn: Callable[[Any], Any]
    future: concurrent.futures.Future[Any]
    exclusive: bool = False  # runs outside a transaction (rekey, checkpoint)


STOP = object()


class Writer(threading.Thread):
    """Owns the only write connection and the chain head; commits queued jobs in groups.

    `head` is the (seq, hash) of the newest operation as this transaction sees it; a job that
    appends moves it, and a job (or group) that rolls back restores it.
    """

    def __init__(self, conn: Any, head: Head, checkpointer: Any) -> None:
        super().__init__(name="oplog-writer", daemon=True)
        self.conn = conn
        conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT}")
        self._ckpt_conn = checkpointer
        self._ckpt_stop = threading.Event()
        self.ckpt_lock = threading.Lock()  # held while checkpointing; rekey swaps the conn
        self._ckpt = threading.Thread(target=self._checkpoint_loop, name="oplog-checkpoint",
                                      daemon=True)
        self.head = head
        self.queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self.heartbeat = time.monotonic()
        self.commits = 0
        self.failed: BaseException | None = None

    def submit(self, fn: Callable[[Any], Any], *, exclusive: bool = False
               ) -> concurrent.futures.Future[Any]:
        """Queue `fn(conn)`; the future resolves after its group committed (or failed)."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.queue.put(Job(fn, fut, exclusive))
        return fut

    def stop(self) -> None:
        """Ask the thread to finish the queued jobs and exit (join it afterwards)."""
        self.queue.put(STOP)

    def run(self) -> None:
        """Start the checkpointer, commit groups until stopped, fail whatever is left."""
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
            if first is STOP:
                return
            batch: list[Job] = [first]  # type: ignore[list-item]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self.queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is STOP:
                    stop = True
                    break
                batch.append(nxt)  # type: ignore[arg-type]
            group: list[Job] = []
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

    def _run_exclusive(self, job: Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.fn(self.conn)
        except BaseException as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

    def _commit_group(self, group: list[Job]) -> None:
        live = [j for j in group if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        head_before = self.head
        outcomes: list[tuple[Job, Any, BaseException | None]] = []
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
            if isinstance(job, Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(WriterStopped("operation log is closed"))
