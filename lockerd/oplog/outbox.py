"""The transactional outbox: messages enqueued with the operation that caused them, read back, marked sent.

A message is inserted in the same transaction as its chain row, so it exists exactly when the
operation does; the publisher sends rows in id (commit) order and marks them once the broker
acknowledged them. Event messages get the next per-stream `seq`, the stream's `epoch` and an
`event_id` here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from lockerd.domain.timefmt import format_ts
from lockerd.oplog.canonical import dumps, parse_ts
from lockerd.oplog.models import OutboxMessage, OutboxRow

MARK_CHUNK = 500  # ids per UPDATE (SQLite's bound-parameter limit is far above)


def validate(msgs: Sequence[OutboxMessage]) -> None:
    """Refuse a malformed message before anything is queued for the writer."""
    for msg in msgs:
        if msg.qos not in (0, 1, 2):
            raise ValueError(f"qos {msg.qos} is not 0, 1 or 2")
        if not msg.stream or not msg.topic:
            raise ValueError("outbox messages need a stream and a topic")


def _event_ts(now: datetime) -> str:
    # The carrier-facing payload time: RFC 3339 UTC with milliseconds (docs/mqtt.md).
    return format_ts(now)


def enqueue(conn: Any, msg: OutboxMessage, op_seq: int, now: datetime, *, ts: str,
            anchor: Mapping[str, Any] | None = None) -> None:
    """Insert one message for operation `op_seq` inside the writer's transaction.

    `anchor` (the signed head at this operation, lockerd.oplog.anchors) goes into the envelope
    of `parcel.*` events, so each carrier holds anchors for its own events.
    """
    payload = dict(msg.payload)
    if anchor is not None and msg.event and str(payload.get("type", "")).startswith("parcel."):
        payload["anchor"] = dict(anchor)
    stream_seq: int | None = None
    if msg.event:
        row = conn.execute("SELECT last_seq, epoch FROM outbox_streams WHERE stream = ?",
                           (msg.stream,)).fetchone()
        stream_seq = (int(row[0]) if row else 0) + 1
        # A stream's epoch is drawn once, when its first event is written: a recreated log has
        # new streams, so its events (seq from 1 again) come with a new epoch.
        epoch = str(row[1]) if row and row[1] else uuid.uuid4().hex
        conn.execute("INSERT INTO outbox_streams (stream, last_seq, epoch) VALUES (?, ?, ?) "
                     "ON CONFLICT(stream) DO UPDATE SET last_seq = excluded.last_seq, "
                     "epoch = excluded.epoch", (msg.stream, stream_seq, epoch))
        payload["epoch"] = epoch
        payload["seq"] = stream_seq
        payload.setdefault("event_id", uuid.uuid4().hex)
        payload.setdefault("v", 1)
        payload.setdefault("ts", _event_ts(now))
    data = dumps(payload).encode("utf-8")
    conn.execute("INSERT INTO outbox (stream, seq, topic, payload, qos, retain, created_at, "
                 "op_seq) VALUES (?,?,?,?,?,?,?,?)",
                 (msg.stream, stream_seq, msg.topic, data, msg.qos, int(msg.retain), ts, op_seq))


def pending(conn: Any, limit: int, after_id: int | None) -> list[OutboxRow]:
    """Unsent rows in id (commit) order, after `after_id` when given."""
    rows = conn.execute(
        "SELECT id, stream, seq, topic, payload, qos, retain, created_at FROM outbox "
        "WHERE sent_at IS NULL AND id > ? ORDER BY id LIMIT ?", (after_id or 0, limit)).fetchall()
    return [OutboxRow(id=r[0], stream=r[1], seq=r[2], topic=r[3], payload_bytes=bytes(r[4]),
                      qos=r[5], retain=bool(r[6]), created_at=parse_ts(r[7])) for r in rows]


def mark_sent(conn: Any, ids: Sequence[int], ts: str) -> int:
    """Set sent_at on still-unsent rows; returns how many changed."""
    changed = 0
    for start in range(0, len(ids), MARK_CHUNK):
        chunk = list(ids[start:start + MARK_CHUNK])
        # only '?' placeholders are formatted into the text; the ids are bound
        cur = conn.execute(f"UPDATE outbox SET sent_at = ? WHERE sent_at IS NULL AND id "  # noqa: S608
                           f"IN ({','.join('?' * len(chunk))})", [ts, *chunk])
        changed += cur.rowcount
    return changed


def stats(conn: Any) -> tuple[int, datetime | None]:
    """(pending count, created_at of the oldest pending row)."""
    row = conn.execute("SELECT count(*), min(created_at) FROM outbox WHERE sent_at IS NULL"
                       ).fetchone()
    return int(row[0]), (parse_ts(row[1]) if row[1] else None)
