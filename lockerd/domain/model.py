"""Cabinet state: compartments, parcels, couriers and panel limiters as immutable pydantic models."""

from __future__ import annotations

from collections.abc import Set
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter

from lockerd.domain.identity import Handover, IdentityCheck
from lockerd.domain.ids import Size

SIZE_ORDER: dict[Size, int] = {Size.S: 0, Size.M: 1, Size.L: 2}


class Frozen(BaseModel):
    """Immutable state value: a change replaces the whole value, so a change record is a snapshot."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CompartmentState(StrEnum):
    """docs/lifecycle.md: free -> reserved -> occupied -> (opening) -> free, plus blocked."""

    FREE = "free"
    RESERVED = "reserved"
    OCCUPIED = "occupied"
    OPENING = "opening"
    BLOCKED = "blocked"


class ParcelKind(StrEnum):
    """Delivery (courier -> recipient) or drop-off (sender -> courier)."""

    DELIVERY = "delivery"
    DROPOFF = "dropoff"


class ParcelStatus(StrEnum):
    """Where a parcel is in its life; each parcel has exactly one."""

    DEPOSITING = "depositing"
    IN_LOCKER = "in_locker"
    OVERDUE = "overdue"
    REFUSED = "refused"
    PICKED_UP = "picked_up"
    RETURNED = "returned"
    DROPOFF_RECEIVED = "dropoff_received"
    COLLECTED = "collected"
    REJECTED = "rejected"
    RECALLED = "recalled"
    ROLLED_BACK = "rolled_back"
    REMOVED_BY_STAFF = "removed_by_staff"
    RETURNED_TO_SENDER = "returned_to_sender"


#: Statuses of a parcel that is physically in (or going into) a compartment.
LIVE_STATUSES = frozenset({
    ParcelStatus.DEPOSITING, ParcelStatus.IN_LOCKER, ParcelStatus.OVERDUE, ParcelStatus.REFUSED,
    ParcelStatus.DROPOFF_RECEIVED, ParcelStatus.REJECTED, ParcelStatus.RECALLED,
})
#: Statuses in which the recipient's pickup code opens the door.
CODE_STATUSES = frozenset({ParcelStatus.IN_LOCKER, ParcelStatus.OVERDUE})


class PendingOp(StrEnum):
    """The door operation a compartment is waiting on (begin ... confirm/rollback)."""

    DEPOSIT = "deposit"
    DROPOFF = "dropoff"
    PICKUP = "pickup"
    RETURN = "return"
    COLLECT = "collect"
    RETRIEVE = "retrieve"


class Pending(Frozen):
    """An open door operation: who started it and when."""

    op: PendingOp
    actor: str = Field(max_length=200)
    panel: str = Field(max_length=64)
    since: datetime


class Compartment(Frozen):
    """One compartment's state; `parcel_id` is the single live parcel inside (or going in).

    A blocked compartment keeps its parcel (state `blocked` with `parcel_id` set); the domain is
    the one owner of "blocked": why, since when and by whom are persisted with the compartment,
    and the door controller reads them (lockerd.doors.ports.BlockedView).
    """

    id: int
    size: Size
    state: CompartmentState = CompartmentState.FREE
    parcel_id: str | None = None
    pending: Pending | None = None
    blocked_reason: str | None = None
    blocked_since: datetime | None = None
    blocked_by: str | None = None


class Parcel(Frozen):
    """A delivery or drop-off. `code` is set only while it can open the door."""

    id: str
    kind: ParcelKind
    carrier: str
    status: ParcelStatus
    compartment: int
    size: Size
    waybill: str | None = None
    courier_id: str | None = None
    code: str | None = None
    created_at: datetime
    deposited_at: datetime | None = None
    deadline: datetime | None = None
    closed_at: datetime | None = None
    declared_contents: str | None = None
    verification_ref: str | None = None
    #: The sender's identity check (drop-offs, Art. 9, 18), masked.
    identity: IdentityCheck | None = None
    #: ID-checked handover (government documents): the carrier's keyed hash of the recipient's
    #: ID number, and the check made at handover (recipient or proxy).
    handover: Handover = Handover.STANDARD
    recipient_id_hash: str | None = None
    handover_check: IdentityCheck | None = None
    reason: str | None = None
    fee_cents: int = 0
    #: Hours the carrier added to the storage period (`parcel.extend`), in total.
    extended_hours: int = 0
    rejected_at: datetime | None = None


def claimable_by_code(parcel: Parcel) -> bool:
    """The parcel's code opens its door now: a delivery waiting for its recipient, or a drop-off
    its carrier rejected, waiting for its sender to take it back (Art. 21)."""
    if parcel.code is None:
        return False
    if parcel.kind is ParcelKind.DELIVERY:
        return parcel.status in CODE_STATUSES
    return parcel.status is ParcelStatus.REJECTED


class Courier(Frozen):
    """A courier granted by its carrier; the PIN is kept only as a salted PBKDF2 hash."""

    carrier: str
    courier_id: str
    pin_hash: str
    expires: datetime
    granted_at: datetime
    revoked_at: datetime | None = None

    @property
    def key(self) -> str:
        """Couriers are named per carrier; two carriers may reuse an id."""
        return courier_key(self.carrier, self.courier_id)


def courier_key(carrier: str, courier_id: str) -> str:
    """State key of a courier."""
    return f"{carrier}/{courier_id}"


class Expectation(Frozen):
    """A delivery the carrier announced (`parcel.expect`): its consent and flags apply at deposit."""

    carrier: str
    waybill: str
    size: Size
    consent: bool = False
    sender_chose_locker: bool = False
    damaged: bool = False
    weight_mismatch: bool = False
    fresh: bool = False
    valuable: bool = False
    agreement: bool = False
    declared_weight_g: int | None = None
    handover: Handover = Handover.STANDARD
    recipient_id_hash: str | None = None
    expected_at: datetime

    @property
    def key(self) -> str:
        """Waybills are unique per carrier."""
        return expectation_key(self.carrier, self.waybill)


def expectation_key(carrier: str, waybill: str) -> str:
    """State key of an expectation."""
    return f"{carrier}/{waybill}"


class RevokedPass(Frozen):
    """An offline courier pass its carrier revoked; remembered until the pass would expire."""

    carrier: str
    pass_id: str
    until: datetime
    revoked_at: datetime

    @property
    def key(self) -> str:
        """Pass ids are the carrier's: two carriers may reuse one."""
        return pass_key(self.carrier, self.pass_id)


def pass_key(carrier: str, pass_id: str) -> str:
    """State key of a revoked pass."""
    return f"{carrier}/{pass_id}"


class Limiter(Frozen):
    """Wrong-credential limiter of one caller (its panel, or `uid:<n>`) or of the whole cabinet
    (`cabinet:codes`, `cabinet:pins`): recent failures and the lockout ladder."""

    panel: str
    failures: tuple[datetime, ...] = ()
    lockouts: int = 0
    locked_until: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing to remember: a change to an empty limiter deletes it (how state is pruned)."""
        return not self.failures and self.lockouts == 0 and self.locked_until is None


class SetCompartment(Frozen):
    """Change: the compartment now has this value."""

    entity: Literal["compartment"] = "compartment"
    value: Compartment


class SetParcel(Frozen):
    """Change: the parcel now has this value (created when new)."""

    entity: Literal["parcel"] = "parcel"
    value: Parcel


class SetCourier(Frozen):
    """Change: the courier now has this value."""

    entity: Literal["courier"] = "courier"
    value: Courier


class SetLimiter(Frozen):
    """Change: the limiter now has this value (an empty one is deleted)."""

    entity: Literal["limiter"] = "limiter"
    value: Limiter


class SetExpectation(Frozen):
    """Change: the expectation under `key` now has this value (None: consumed or recalled)."""

    entity: Literal["expectation"] = "expectation"
    key: str
    value: Expectation | None


class SetRevokedPass(Frozen):
    """Change: the revocation under `key` now has this value (None: forgotten, the pass expired)."""

    entity: Literal["revoked_pass"] = "revoked_pass"
    key: str
    value: RevokedPass | None


Change = Annotated[SetCompartment | SetParcel | SetCourier | SetLimiter | SetExpectation
                   | SetRevokedPass, Field(discriminator="entity")]
CHANGES = TypeAdapter(list[Change])


class CabinetState(BaseModel):
    """What the cabinet knows now; rebuilt after a crash from the live state or by replaying changes.

    `parcels` holds the live parcels only (LIVE_STATUSES: in, or going into, a compartment). A
    parcel that reaches a terminal status (picked up, returned, collected, rolled back, removed)
    leaves it when that change is applied: its record is in the log's tables, and keeping every
    parcel ever handled made memory and every scan grow for the life of the cabinet. The lookups
    the flows make per request are indexed: by code digest (`parcel_by_code`), by carrier and
    waybill (`live_delivery`); a compartment names its parcel (`Compartment.parcel_id`). Change
    state through `apply` only, which keeps the indexes.
    """

    model_config = ConfigDict(extra="forbid")
    compartments: dict[int, Compartment] = Field(default_factory=dict)
    parcels: dict[str, Parcel] = Field(default_factory=dict)
    couriers: dict[str, Courier] = Field(default_factory=dict)
    limiters: dict[str, Limiter] = Field(default_factory=dict)
    expected: dict[str, Expectation] = Field(default_factory=dict)
    revoked_passes: dict[str, RevokedPass] = Field(default_factory=dict)
    _by_code: dict[str, str] = PrivateAttr(default_factory=dict)
    _by_waybill: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Drop finished parcels a snapshot may hold, index the rest."""
        for pid in [pid for pid, p in self.parcels.items() if p.status not in LIVE_STATUSES]:
            del self.parcels[pid]
        for parcel in self.parcels.values():
            self._index(parcel)

    def apply(self, changes: list[Change] | tuple[Change, ...]) -> None:
        """Apply recorded changes in order (the only way state changes)."""
        for change in changes:
            if isinstance(change, SetCompartment):
                self.compartments[change.value.id] = change.value
            elif isinstance(change, SetParcel):
                self._set_parcel(change.value)
            elif isinstance(change, SetCourier):
                self.couriers[change.value.key] = change.value
            elif isinstance(change, SetLimiter):
                if change.value.is_empty:
                    self.limiters.pop(change.value.panel, None)
                else:
                    self.limiters[change.value.panel] = change.value
            elif isinstance(change, SetRevokedPass):
                if change.value is None:
                    self.revoked_passes.pop(change.key, None)
                else:
                    self.revoked_passes[change.key] = change.value
            elif change.value is None:
                self.expected.pop(change.key, None)
            else:
                self.expected[change.key] = change.value

    def parcel_by_code(self, digest: str) -> Parcel | None:
        """The live parcel whose pickup code has this digest."""
        pid = self._by_code.get(digest)
        return None if pid is None else self.parcels.get(pid)

    def code_digests(self) -> Set[str]:
        """Digests of the pickup codes live parcels hold (a view, for uniqueness checks)."""
        return self._by_code.keys()

    def live_delivery(self, carrier: str, waybill: str) -> Parcel | None:
        """The live delivery of this carrier's waybill."""
        pid = self._by_waybill.get((carrier, waybill))
        return None if pid is None else self.parcels.get(pid)

    def _set_parcel(self, parcel: Parcel) -> None:
        old = self.parcels.pop(parcel.id, None)
        if old is not None:
            self._unindex(old)
        if parcel.status in LIVE_STATUSES:
            self.parcels[parcel.id] = parcel
            self._index(parcel)

    def _index(self, parcel: Parcel) -> None:
        if parcel.code is not None:
            self._by_code[parcel.code] = parcel.id
        if parcel.kind is ParcelKind.DELIVERY and parcel.waybill is not None:
            self._by_waybill[(parcel.carrier, parcel.waybill)] = parcel.id

    def _unindex(self, parcel: Parcel) -> None:
        if parcel.code is not None and self._by_code.get(parcel.code) == parcel.id:
            del self._by_code[parcel.code]
        key = (parcel.carrier, parcel.waybill or "")
        if self._by_waybill.get(key) == parcel.id:
            del self._by_waybill[key]
