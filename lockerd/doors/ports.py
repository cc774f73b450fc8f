"""What the door package needs from the rest of the daemon, as small typed ports (Protocols).

The daemon hands real implementations to the constructors (the driver factory's boards, the
operation log); tests hand the simulator's boards or a log that refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from lockerd.doors.events import OpenResult
    from lockerd.drivers.factory import BoardSet


class BoardSource(Protocol):
    """Opens the lock boards when the door controller starts (real ports or the simulator)."""

    async def open(self) -> BoardSet:
        """The opened buses and boards; relays forced off."""
        ...


class OpenedBoards(Protocol):
    """The boards once they are open (None before the door controller started)."""

    @property
    def board_set(self) -> BoardSet | None:
        """The open board set, or None."""
        ...


class DoorOpener(Protocol):
    """Opens a compartment through the door controller (expected, confirmed, never 'forced')."""

    async def open(self, compartment_id: int, reason: str, actor: str, *,
                   allow_blocked: bool = False) -> OpenResult:
        """Pulse and confirm by the sensor."""
        ...


class OperationRecorder(Protocol):
    """Writes a technician's door action to the operation log; raises when it cannot."""

    async def record(self, kind: str, *, actor: str, body: dict[str, Any],
                     compartment: int | None) -> None:
        """Append one record (no personal data in `body`)."""
        ...


class BlockNote(Protocol):
    """Why, since when and by whom a compartment is blocked (the domain's compartment)."""

    @property
    def blocked_reason(self) -> str | None:
        """Why (door_jammed, door_forced, a technician's reason ...)."""
        ...

    @property
    def blocked_since(self) -> datetime | None:
        """Since when (UTC)."""
        ...

    @property
    def blocked_by(self) -> str | None:
        """Who blocked it (doors, uid:N ...)."""
        ...


class BlockedView(Protocol):
    """The blocked compartments as the domain keeps them (the parcel flows in the daemon). The
    controller refuses customer opens of these and shows them in `doors.list`; it never keeps a
    blocked set of its own, so after a restart both read the same persisted state."""

    def blocks(self) -> Mapping[int, BlockNote]:
        """Blocked compartment id -> why, since when, by whom."""
        ...
