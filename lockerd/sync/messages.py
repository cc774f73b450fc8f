"""Helpers for other components: the outbox message of a carrier event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from lockerd.oplog import OutboxMessage
from lockerd.sync.payloads import EventType
from lockerd.sync.topics import Topics

EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))


def event_message(topics: Topics, carrier: str, type_: str, body: Mapping[str, Any]) -> OutboxMessage:
    """The outbox message for one carrier event; pass it to OpLog.append(outbox=[...]).

    The store fills `v`, `seq` (per carrier), `event_id` and `ts` in the same transaction.
    Only the carrier's own parcel or courier may appear in `body` (Art. 13).
    """
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    return OutboxMessage(stream=carrier, topic=topics.events(carrier),
                         payload={"type": type_, "body": dict(body)}, qos=1, retain=False,
                         event=True)
