"""When the operation log's WAL is copied into the database file: the checkpoint policy and its thread.

Every commit is durable in the WAL the moment it returns (synchronous = FULL); a checkpoint
only copies committed pages into the main file. Copying after every commit (the old policy:
every 0.25 s) writes each page twice and adds two fsyncs per operation; on an SD card that is
wear for nothing. A page changed by many commits (the tail of the chain, the outbox, the live
state of a busy compartment) is copied once per checkpoint, so the fewer checkpoints, the fewer
bytes. Checkpoints here run after `every_commits` commits (the WAL stays a few MiB), and once
after the log has been quiet for `idle_s`, so an idle cabinet's WAL is folded in once and then
nothing is written until the next operation. They run on their own connection and thread, so no
commit waits for one (SQLCipher decrypts and re-encrypts each copied page).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """How often the WAL is folded into the database file (see the module docstring)."""

    #: a PASSIVE checkpoint after this many commits (about 10 pages each: a WAL of a few MiB)
    every_commits: int = 100
    #: ... or once the log has had no commit for this long after the last one
    idle_s: float = 300.0
    #: the writer's own auto-checkpoint (in its commit) if this thread falls this far behind
    backstop_pages: int = 8192
    #: after a failed checkpoint, wait this long before the next attempt
    retry_s: float = 5.0


class Checkpointer(threading.Thread):
    """Checkpoints on its own connection when the policy says so; sleeps while nothing is due.

    The writer calls `committed()` after each commit. With no commit pending a checkpoint the
    thread waits without a timeout: an idle log costs no wake-ups and writes nothing.
    """

    def __init__(self, conn: Any, policy: CheckpointPolicy) -> None:
        super().__init__(name="oplog-checkpoint", daemon=True)
        self.policy = policy
        self._conn = conn
        self.lock = threading.Lock()  # held while checkpointing; rekey swaps the conn under it
        self._cond = threading.Condition()
        self._pending = 0  # commits not yet checkpointed
        self._last_commit = 0.0
        self._not_before = 0.0  # after a failed or partial checkpoint: no retry before this
        self._stopping = False
        self.checkpoints = 0  # completed checkpoint runs (tests and benches read it)
        self.failures = 0

    def committed(self) -> None:
        """A commit reached the WAL (called by the writer thread)."""
        with self._cond:
            self._pending += 1
            self._last_commit = time.monotonic()
            # the first commit starts the idle timer; the threshold makes it due now
            if self._pending == 1 or self._pending >= self.policy.every_commits:
                self._cond.notify()

    def stop(self) -> None:
        """Finish the running checkpoint, close the connection and exit (join afterwards)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def replace_connection(self, conn: Any) -> None:
        """Swap in a connection opened with a new key (after PRAGMA rekey)."""
        with self.lock:
            old, self._conn = self._conn, conn
        with contextlib.suppress(Exception):
            old.close()

    def run(self) -> None:
        """Wait for a due checkpoint, run it, repeat until stopped."""
        failing = False
        try:
            while (taken := self._wait_due()) is not None:
                try:
                    with self.lock:
                        busy, frames, copied = self._conn.execute(
                            "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except Exception as exc:
                    self.failures += 1
                    if not failing:
                        log.warning("background WAL checkpoint failed: %s", exc)
                    failing = True
                    self._requeue(taken, self.policy.retry_s)
                    continue
                if failing:
                    log.info("background WAL checkpoint works again")
                failing = False
                self.checkpoints += 1
                if busy or copied < frames:
                    # a reader still uses older frames: fold the rest in a little later
                    self._requeue(1, self.policy.retry_s)
        finally:
            with contextlib.suppress(Exception):
                self._conn.close()

    def _wait_due(self) -> int | None:
        """Block until a checkpoint is due; returns how many commits it covers (None: stop)."""
        with self._cond:
            while not self._stopping:
                if self._pending == 0:
                    self._cond.wait()
                    continue
                now = time.monotonic()
                due = now if self._pending >= self.policy.every_commits \
                    else self._last_commit + self.policy.idle_s
                due = max(due, self._not_before)
                if due <= now:
                    break
                self._cond.wait(due - now)
            if self._stopping:
                return None
            taken, self._pending = self._pending, 0
            return taken

    def _requeue(self, commits: int, delay_s: float) -> None:
        """Count `commits` as not checkpointed again, not to be retried for `delay_s`."""
        with self._cond:
            self._pending += commits
            self._not_before = time.monotonic() + delay_s
