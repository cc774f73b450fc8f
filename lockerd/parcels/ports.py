"""The ports of the parcel flows: what the use cases and their component call, not how it is built.

The daemon passes the real objects (the oplog component, the door controller, the camera guard,
the carrier feed); the write-ahead tests pass fakes. Nothing here imports the API server, MQTT
or the door controller, so the use-case core stays free of them (tests/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from lockerd.domain import Decision
from lockerd.domain.identity import IdentityCheck, Relation
from lockerd.oplog import OutboxMessage

T = TypeVar("T")

#: A domain-table write that joins the append's transaction (see lockerd/parcels/store.py).
Mutation = Callable[[Any], None]


class OpenResultLike(Protocol):
    """What `Doors.open` returns; `outcome` is acknowledged/opened/already_open/jammed/failed."""

    @property
    def outcome(self) -> str:
        """Outcome name (a StrEnum value compares equal to its string)."""
        ...


class Doors(Protocol):
    """The door controller as the flows need it."""

    async def open(self, compartment_id: int, reason: str, actor: str) -> OpenResultLike:
        """Pulse the lock once (never retried at transport level) and report what happened."""
        ...

    async def wait_closed(self, compartment_id: int, timeout_s: float) -> bool:
        """True once the door reads closed, False after `timeout_s` seconds."""
        ...

    def occupied(self, compartment_id: int) -> bool | None:
        """Item seen in the compartment; None where the board has no occupancy sensor."""
        ...


class DoorWatch(Doors, Protocol):
    """The door controller as the parcel-flows component needs it: the doors, plus what on the
    door side needs a person (the `incidents` list)."""

    def incidents(self) -> list[dict[str, Any]]:
        """Boards offline and doors in an unknown state, each with its age in seconds."""
        ...


class OperationLog(Protocol):
    """The encrypted operation log as the use cases need it: one transaction per call."""

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (), mutate: Mutation | None = None) -> object:
        """Append an operation row, its outbox messages and domain-table rows atomically;
        raises (and records nothing) when it cannot."""
        ...


class ParcelStore(OperationLog, Protocol):
    """The log as the component needs it at start: the pickup-code key and the live state."""

    async def secret(self, name: str) -> bytes:
        """A random secret kept inside the log (created on first use)."""
        ...

    async def read(self, fn: Callable[[Any], T]) -> T:
        """Run `fn` on a read connection."""
        ...


class LogHandle(Protocol):
    """Whoever owns the log: it opens only when the oplog component starts, after the flows
    are built, so the use cases ask for `store` at each use."""

    @property
    def store(self) -> OperationLog:
        """The open log; raises before it is open."""
        ...


class StoreHandle(LogHandle, Protocol):
    """`LogHandle` for the component, which also reads the key and the live state at start."""

    @property
    def store(self) -> ParcelStore:
        """The open log; raises before it is open."""
        ...


class IntakeGate(Protocol):
    """The camera guard's drop-off gate (a closed stand-in when the camera is disabled)."""

    def is_open(self) -> bool:
        """True while drop-offs may be accepted (camera healthy)."""
        ...

    def reason(self) -> str | None:
        """Why the gate is closed (for the panel), or None."""
        ...


class EvidenceRefLike(Protocol):
    """A stored snapshot: what the record keeps of it."""

    def as_dict(self) -> dict[str, Any]:
        """id, sha256, ts, label."""
        ...


class Camera(Protocol):
    """The camera guard as the flows need it: its state and evidence snapshots at door events."""

    def camera_state(self) -> dict[str, Any]:
        """Small JSON-able state (verdict, intake open, reason); no personal data."""
        ...

    async def snapshot_ref(self, label: str) -> EvidenceRefLike | None:
        """Store the newest frame as evidence; None when there is no frame or no store."""
        ...


class CarrierEvents(Protocol):
    """Builds the outbox row of one carrier event (the sync side owns topics and payload form)."""

    def event(self, carrier: str, type_: str, body: Mapping[str, Any]) -> OutboxMessage:
        """The outbox message; the log fills seq, event_id and ts in the append's transaction."""
        ...


class Carriers(CarrierEvents, Protocol):
    """Carrier sync as the flows component needs it: event rows and two nudges."""

    def outbox_written(self) -> None:
        """Rows were committed: publish them now rather than at the next poll."""
        ...

    def state_changed(self) -> None:
        """Free counts or blocked compartments changed: republish the retained state."""
        ...


class Committer(Protocol):
    """Records a carrier command's change with its reply in one transaction
    (lockerd.sync.commands.CommandContext.commit)."""

    async def __call__(self, kind: str, *, body: Mapping[str, Any], result: Any = None,
                       outbox: Sequence[OutboxMessage] = (), compartment: int | None = None,
                       parcel_id: str | None = None, mutate: Mutation | None = None) -> object:
        """Append the change, the remembered command id and the `ok:true` reply atomically."""
        ...


class Observer(Protocol):
    """Told after every recorded decision (the component: wake the publisher, alerts, state)."""

    def recorded(self, decision: Decision) -> None:
        """`decision` is in the log and applied to the cabinet."""
        ...


class Identity(Protocol):
    """Identity checks at the cabinet (lockerd/parcels/identity.py `IdentityChecks`)."""

    @property
    def has_reader(self) -> bool:
        """The cabinet has an ID-card reader."""
        ...

    async def for_dropoff(self, carrier: str, token: str, wait_s: float = 0.0) -> IdentityCheck:
        """The sender's check: the card on the reader (waiting up to `wait_s` for one), else the
        carrier-signed token."""
        ...

    async def check_card(self, *, carrier: str | None = None,
                         relation: Relation | None = None, wait_s: float = 0.0) -> IdentityCheck:
        """Read the card on the reader (handover: with the carrier-keyed hash), waiting up to
        `wait_s` for one."""
        ...
