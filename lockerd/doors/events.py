"""Typed door events published on the EventBus by the door controller (alerts use events.Alert)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from lockerd.app.events import utc_now
from lockerd.drivers.base import DoorState


class Outcome(StrEnum):
    """Result of an open command (docs/boards.md): distinct, never collapsed."""

    ACKNOWLEDGED = "acknowledged"  # the board took the pulse; the sensor could not confirm
    OPENED = "opened"              # the sensor saw the door open
    ALREADY_OPEN = "already_open"  # it was open before; the relay was fired anyway
    JAMMED = "jammed"              # two pulses acknowledged, door still closed
    FAILED = "failed"              # board already silent before the pulse, no sensor evidence
    UNKNOWN = "unknown"            # reply lost or garbled, the door could not be read after it


@dataclass(frozen=True, slots=True)
class OpenResult:
    """What an open command achieved."""

    compartment: int
    outcome: Outcome
    pulses: int
    elapsed_s: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the API."""
        return {"compartment": self.compartment, "outcome": self.outcome.value,
                "pulses": self.pulses, "elapsed_s": round(self.elapsed_s, 3), "detail": self.detail}


class LeftOpenLevel(StrEnum):
    """Escalation of a door left open (docs/lifecycle.md)."""

    PROMPT = "prompt"
    ALERT = "alert"
    INCIDENT = "incident"


@dataclass(frozen=True, slots=True)
class DoorStateChanged:
    """The sensor of a compartment reads something new (including unknown)."""

    compartment: int
    old: DoorState
    new: DoorState
    ts: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class DoorOpened:
    """A door went from closed (or unknown) to open; `commanded` is False for a forced door."""

    compartment: int
    commanded: bool
    ts: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class DoorClosed:
    """A door went from open to closed."""

    compartment: int
    open_for_s: float
    ts: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class DoorCommanded:
    """An open command finished (for the audit trail: who, why, what came of it)."""

    compartment: int
    reason: str
    actor: str
    result: OpenResult
    ts: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class DoorLeftOpen:
    """A door has been open past an escalation threshold (prompt is for the panel)."""

    compartment: int
    level: LeftOpenLevel
    open_for_s: float
    ts: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class DoorFault:
    """A fact the controller saw on a door: it jammed, was forced open, or was left open past the
    incident threshold. The controller does not block anything itself: the domain (the parcel
    flows) records the block and the controller reads the blocked set back (ports.BlockedView)."""

    compartment: int
    fault: str
    """The alert kind that goes with it: door_jammed, door_forced or door_left_open."""
    ts: datetime = field(default_factory=utc_now)
