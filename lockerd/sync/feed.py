"""The carrier feed: how other components put carrier events in the outbox and nudge the sync component.

The parcel flows and the sync component each need the other (the flows write carrier events,
sync reports the flows' free compartments), so the daemon builds this small object first and
hands it to both: the flows build event rows with it and signal through it, sync waits on it.
"""

from __future__ import annotations

import asyncio
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


class CarrierFeed:
    """Event rows for one cabinet's topics, and the two signals the sync component waits on."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        #: set when outbox rows were committed: the publisher reads the outbox now, not at its poll
        self.written = asyncio.Event()
        #: set when free counts, blocked compartments or intake changed: republish `state`
        self.state_due = asyncio.Event()

    def event(self, carrier: str, type_: str, body: Mapping[str, Any]) -> OutboxMessage:
        """The outbox row of a carrier event on this cabinet's topics."""
        return event_message(self.topics, carrier, type_, body)

    def outbox_written(self) -> None:
        """Rows were committed (call after OpLog.append with outbox messages)."""
        self.written.set()

    def state_changed(self) -> None:
        """The cabinet state carriers see changed (republished at most every
        `[mqtt] state_min_interval_s`)."""
        self.state_due.set()
