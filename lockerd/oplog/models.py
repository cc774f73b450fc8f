"""Value types of the operation log API: operations, outbox messages and rows, remembered commands."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockerd.oplog.canonical import format_ts

CABINET_STREAM = "_cabinet"


@dataclass(frozen=True, slots=True)
class Operation:
    """One link of the chain, as committed."""

    seq: int
    ts: datetime
    kind: str
    actor: str
    body: dict[str, Any]
    compartment: int | None
    parcel_id: str | None
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (bodies never carry personal data, so this needs no masking)."""
        return {"seq": self.seq, "ts": format_ts(self.ts), "kind": self.kind, "actor": self.actor,
                "compartment": self.compartment, "parcel_id": self.parcel_id, "body": self.body,
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message to publish once the operation that caused it is committed.

    stream: carrier id, or "_cabinet" for alerts/state. For event messages (event=True) the
    store assigns the next per-stream `seq` and an `event_id` inside the transaction and stores
    the payload with both filled in (plus "v": 1 and "ts" when absent).
    """

    stream: str
    topic: str
    payload: Mapping[str, Any]
    qos: int = 1
    retain: bool = False
    event: bool = True


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored outbox message, ready to publish byte for byte."""

    id: int
    stream: str
    seq: int | None
    topic: str
    payload_bytes: bytes
    qos: int
    retain: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """The first reply to a carrier command, remembered so a repeated id gets it again."""

    carrier: str
    cmd_id: str
    reply: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of walking the chain; `broken_seq`/`reason` name the first broken link."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    broken_seq: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the API."""
        return {"ok": self.ok, "checked": self.checked, "head_seq": self.head_seq,
                "head_hash": self.head_hash, "broken_seq": self.broken_seq, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Destruction:
    """What a purge destroyed: recorded in the chain and in the destructions table."""

    record_class: str
    count: int
    range_from: str | None
    range_to: str | None
    extra: dict[str, Any] = field(default_factory=dict)
