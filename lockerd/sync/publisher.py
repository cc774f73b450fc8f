"""Drains the persistent outbox to the broker in commit order, marking rows sent only on PUBACK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from lockerd.oplog import OpLog
from lockerd.sync.link import LinkError, MqttLink

log = logging.getLogger(__name__)

READ_BATCH = 200
# Acknowledgements are written in batches: up to MARK_WITHIN_S after the first one, riding the
# next operation's transaction when one commits meanwhile (OpLog.outbox_mark_sent), and at once
# when MARK_BATCH have piled up (a backlog draining). One transaction (and fsync) per
# acknowledgement was a third of the log's commits per parcel; a mark lost in a crash only
# means that row is published again, which consumers drop by its seq.
MARK_WITHIN_S = 1.0
MARK_BATCH = 200
# An in-flight message unacknowledged this long while connected is republished from the outbox.
RESEND_AFTER_S = 60.0


class OutboxPublisher:
    """Publishes unsent outbox rows with at most `window` unacknowledged at a time.

    Rows are read in id order (commit order), so each carrier's events go out in `seq` order;
    MQTT keeps order per topic. paho keeps unacknowledged messages across a reconnect of the
    same client and resends them itself; after a restart the outbox is the only truth and
    every unsent row is published again (at-least-once; consumers keep the last `seq`).
    """

    def __init__(self, oplog: OpLog, link: MqttLink | None, *, wake: asyncio.Event,
                 window: int = 100, idle_poll_s: float = 0.5) -> None:
        self._oplog = oplog
        self._link = link
        self._window = window
        self._idle_poll_s = idle_poll_s
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (row id, published at)
        self._acked: list[int] = []
        self._cursor = 0
        self._connected_at = 0.0
        # set by whoever committed rows (CarrierFeed.written): read the outbox now
        self._wake = wake
        self._space = asyncio.Event()
        self._ack_event = asyncio.Event()
        self._online = asyncio.Event()
        self.published = 0
        self.acked = 0
        self.refused = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ signals (loop thread)

    def on_connect(self) -> None:
        """The link is up: resume draining (paho resends what was in flight)."""
        self._connected_at = time.monotonic()
        self._online.set()
        self._wake.set()

    def on_disconnect(self) -> None:
        """The link is down: stop publishing until it is back."""
        self._online.clear()

    def on_puback(self, mid: int, refused: bool) -> bool:
        """Broker acknowledged `mid`; returns False when the mid is not an outbox row."""
        entry = self._inflight.pop(mid, None)
        if entry is None:
            return False
        if refused:
            # Retrying a message the broker refuses (ACL) would stall every later one.
            self.refused += 1
            log.error("broker refused outbox row %d (marked sent, check the broker ACL)", entry[0])
        self.acked += 1
        self._acked.append(entry[0])
        self._ack_event.set()
        self._space.set()
        return True

    @property
    def inflight(self) -> int:
        """Published, not yet acknowledged."""
        return len(self._inflight)

    # ------------------------------------------------------------------ tasks

    async def run(self) -> None:
        """Drain and mark until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._drain(), name="sync:drain")
            tg.create_task(self._mark(), name="sync:mark")

    async def flush_marks(self, within_s: float | None = None) -> None:
        """Write every acknowledgement received so far; at once unless `within_s` lets them
        wait for another transaction to ride (a clean stop flushes at once)."""
        while self._acked:
            ids, self._acked = self._acked, []
            wait = None if within_s is None or len(ids) >= MARK_BATCH else within_s
            try:
                await self._oplog.outbox_mark_sent(ids, within_s=wait)
            except asyncio.CancelledError:
                self._acked[:0] = ids  # stopping: the final flush writes them
                raise

    async def _mark(self) -> None:
        while True:
            await self._ack_event.wait()
            self._ack_event.clear()
            try:
                await self.flush_marks(MARK_WITHIN_S)
            except Exception as exc:  # the rows stay pending and are sent again: harmless
                self.last_error = f"mark sent failed: {exc}"
                log.error("cannot mark outbox rows sent: %s", exc)
                await asyncio.sleep(1.0)

    async def _drain(self) -> None:
        link = self._link
        if link is None:
            await asyncio.Event().wait()
            return
        while True:
            await self._online.wait()
            self._check_stale()
            space = self._window - len(self._inflight)
            if space <= 0:
                self._space.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._space.wait(), 1.0)
                continue
            self._wake.clear()
            rows = await self._oplog.outbox_pending(limit=min(space, READ_BATCH),
                                                    after_id=self._cursor)
            if not rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)
                continue
            now = time.monotonic()
            for row in rows:
                if not link.connected:
                    break
                try:
                    mid = link.publish(row.topic, row.payload_bytes, row.qos, row.retain)
                except LinkError as exc:
                    self.last_error = str(exc)
                    log.warning("outbox publish failed: %s", exc)
                    await asyncio.sleep(0.5)
                    break
                self._inflight[mid] = (row.id, now)
                self._cursor = row.id
                self.published += 1

    def _check_stale(self) -> None:
        if not self._inflight:
            return
        now = time.monotonic()
        oldest = min(t for _, t in self._inflight.values())
        if now - max(oldest, self._connected_at) > RESEND_AFTER_S:
            log.warning("%d outbox messages unacknowledged for %.0f s: publishing them again",
                        len(self._inflight), RESEND_AFTER_S)
            self._inflight.clear()
            self._cursor = 0
