"""The operation log's writer thread: the only write connection, group commit, riding jobs.

Each queued job runs in its own SAVEPOINT inside one BEGIN IMMEDIATE ... COMMIT per group, so a
failing job rolls back alone while the others of its group still commit with one fsync; a job's
future resolves only after COMMIT returned (synchronous = FULL), which is what the write-ahead
rule waits for. A job submitted with `ride_s` (bookkeeping that may wait, such as marking
outbox rows sent) joins the next group that commits anyway, or commits alone once `ride_s`
has passed: it costs no transaction and no fsync of its own while the cabinet is busy. WAL
checkpoints run on their own thread (lockerd.oplog.checkpoint).
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
from lockerd.oplog.checkpoint import Checkpointer, CheckpointPolicy
from lockerd.oplog.errors import DiskFull, OplogError, WriterStopped, is_disk_full

log = logging.getLogger(__name__)

MAX_BATCH = 64
HEARTBEAT_S = 0.5  # the queue wait: the watchdog sees the thread alive at least this often


@dataclass(slots=True)
class Job:
    """One unit of work for the writer and the future its caller awaits."""

    fn: Callable[[Any], Any]
    future: concurrent.futures.Future[Any]
    exclusive: bool = False  # runs outside a transaction (rekey, checkpoint)
    ride_until: float | None = None  # monotonic deadline of a job that rides the next group


STOP = object()


class Writer(threading.Thread):
    """Owns the only write connection and the chain head; commits queued jobs in groups.

    `head` is the (seq, hash) of the newest operation as this transaction sees it; a job that
    appends moves it, and a job (or group) that rolls back restores it.
    """

    def __init__(self, conn: Any, head: Head, checkpointer: Any,
                 policy: CheckpointPolicy | None = None) -> None:
        super().__init__(name="oplog-writer", daemon=True)
        self.conn = conn
        policy = policy or CheckpointPolicy()
        # the writer folds the WAL in itself only if the checkpoint thread falls far behind
        conn.execute(f"PRAGMA wal_autocheckpoint = {policy.backstop_pages}")
        self.checkpointer = Checkpointer(checkpointer, policy)
        self.ckpt_lock = self.checkpointer.lock  # rekey holds it while it swaps the key
        self._riders: list[Job] = []
        self.head = head
        self.queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self.heartbeat = time.monotonic()
        self.commits = 0
        self.failed: BaseException | None = None
        #: monotonic start of the group being committed now (None while idle), and how long the
        #: last group took: the daemon's health reads them ("log writer slow")
        self.busy_since: float | None = None
        self.last_commit_s = 0.0
        self.last_commit_end = -float("inf")
        #: monotonic time of the first append that failed because the disk is full, None once
        #: a commit went through again (the cabinet reports `disk_full` meanwhile)
        self.disk_full_since: float | None = None

    def submit(self, fn: Callable[[Any], Any], *, exclusive: bool = False,
               ride_s: float | None = None) -> concurrent.futures.Future[Any]:
        """Queue `fn(conn)`; the future resolves after its group committed (or failed).

        With `ride_s` the job waits up to that long for another group to join (see the module
        docstring); it never delays anyone else's commit.
        """
        if exclusive and ride_s is not None:
            raise ValueError("an exclusive job cannot ride another group")
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        ride_until = None if ride_s is None else time.monotonic() + ride_s
        self.queue.put(Job(fn, fut, exclusive, ride_until))
        return fut

    def stop(self) -> None:
        """Ask the thread to finish the queued jobs and exit (join it afterwards)."""
        self.queue.put(STOP)

    def run(self) -> None:
        """Start the checkpointer, commit groups until stopped, fail whatever is left."""
        self.checkpointer.start()
        try:
            self._loop()
        except BaseException as exc:  # the thread must report why it died
            self.failed = exc
            log.critical("operation log writer died: %s", exc, exc_info=True)
        finally:
            self._fail_queued()
            self.checkpointer.stop()
            self.checkpointer.join()
            with contextlib.suppress(Exception):
                self.conn.close()

    def replace_checkpointer(self, conn: Any) -> None:
        """Swap in a connection opened with a new key (after PRAGMA rekey)."""
        self.checkpointer.replace_connection(conn)

    def _loop(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=self._wait_s())
            except queue.Empty:
                self.heartbeat = time.monotonic()
                self._commit_due_riders()
                continue
            if first is STOP:
                self._commit_group([])  # riders still waiting commit before the thread ends
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
                if job.ride_until is not None:
                    self._riders.append(job)
                elif job.exclusive:
                    self._commit_group(group)
                    group = []
                    self._run_exclusive(job)
                else:
                    group.append(job)
            if group or stop:
                self._commit_group(group)
            else:
                self._commit_due_riders()
            self.heartbeat = time.monotonic()
            if stop:
                return

    def _wait_s(self) -> float:
        if not self._riders:
            return HEARTBEAT_S
        due = min(j.ride_until or 0.0 for j in self._riders) - time.monotonic()
        return min(HEARTBEAT_S, max(0.0, due))

    def _commit_due_riders(self) -> None:
        """Riders whose time is up commit on their own (with any others waiting)."""
        now = time.monotonic()
        if any((j.ride_until or 0.0) <= now for j in self._riders):
            self._commit_group([])

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
        """Commit `group` and every waiting rider in one transaction (one fsync), timed."""
        riders, self._riders = self._riders, []
        live = [j for j in group + riders if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        started = self.busy_since = time.monotonic()
        try:
            self._commit_live(live)
        finally:
            end = time.monotonic()
            self.last_commit_s, self.last_commit_end, self.busy_since = end - started, end, None

    def _commit_live(self, live: list[Job]) -> None:
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
            failure: OplogError = OplogError(f"commit failed: {exc}")
            if is_disk_full(exc):
                failure = DiskFull(f"commit failed, the disk is full: {exc}")
                self._note_full(True)
            for job in live:
                job.future.set_exception(failure)
            return
        self.commits += 1
        self.checkpointer.committed()
        self._note_full(any(is_disk_full(error) for _, _, error in outcomes))
        for job, result, error in outcomes:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)

    def _note_full(self, full: bool) -> None:
        if full and self.disk_full_since is None:
            self.disk_full_since = time.monotonic()
            log.critical("operation log: the disk is full; nothing can be recorded until "
                         "there is space again")
        elif not full and self.disk_full_since is not None:
            self.disk_full_since = None
            log.warning("operation log: appends go through again (disk space returned)")

    def _fail_queued(self) -> None:
        left: list[object] = list(self._riders)
        self._riders = []
        while True:
            try:
                left.append(self.queue.get_nowait())
            except queue.Empty:
                break
        for job in left:
            if isinstance(job, Job) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(WriterStopped("operation log is closed"))
