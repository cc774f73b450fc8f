"""What a domain command returns: a refusal or the changes, events and door to open, plus its record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lockerd.domain.errors import ErrorCode
from lockerd.domain.model import CHANGES, Change


@dataclass(frozen=True, slots=True)
class Record:
    """The operation-log entry for a decision (written before any door moves)."""

    kind: str
    actor: str
    body: dict[str, Any]
    compartment: int | None = None
    parcel_id: str | None = None


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """An event of docs/mqtt.md for one carrier's `events` stream (only its own parcels/couriers)."""

    carrier: str
    type: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome of a command. Refusals may still carry changes (a wrong code counts against the panel).

    `failed` marks an accepted decision that records a door operation which did not happen (a
    jam, a rollback): its changes apply, but the caller is told it failed, with that code.
    """

    record: Record
    error: ErrorCode | None = None
    failed: ErrorCode | None = None
    message: str = ""
    changes: tuple[Change, ...] = ()
    events: tuple[DomainEvent, ...] = ()
    open_door: int | None = None
    notify_operator: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the command was accepted."""
        return self.error is None

    def changes_json(self) -> list[Any]:
        """The changes as JSON-able data, for the log row (replayed after a crash)."""
        return CHANGES.dump_python(list(self.changes), mode="json")  # type: ignore[no-any-return]
