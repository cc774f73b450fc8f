"""The pydantic models of every MQTT payload (docs/mqtt.md); docs/asyncapi.yaml is tested against them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

from lockerd.app.events import AlertKind, Severity
from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import COURIER_PATTERN, WAYBILL_PATTERN
from lockerd.domain.timefmt import format_ts


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a zone (RFC 3339, e.g. 2026-01-31T08:00:00Z)")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_to_utc), PlainSerializer(format_ts, return_type=str)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

EventType = Literal[
    "parcel.deposited", "parcel.picked_up", "parcel.refused", "parcel.overdue",
    "parcel.returned", "dropoff.received", "dropoff.collected", "dropoff.rejected",
    "courier.granted", "courier.revoked",
    "parcel.removed_by_staff", "dropoff.returned_to_sender",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    """Base of every payload: unknown fields are refused, `v` is 1."""

    v: Literal[1] = Field(default=1, description="Payload version.")


# ------------------------------------------------------------------ out: status, state, alerts

class StatusOnline(Message):
    """Birth message, retained on `status` at every connect."""

    online: Literal[True] = True
    ts: UtcTime
    version: str = Field(description="lockerd version.")
    name: str = Field(description="Locker name (Art. 24).")
    address: str = Field(description="Locker address (Art. 24).")


class StatusOffline(Message):
    """Last will and clean-stop message, retained on `status`."""

    online: Literal[False] = False
    ts: UtcTime


class Intake(_Strict):
    """Whether drop-offs are accepted now (closed while the camera is unhealthy)."""

    open: bool
    reason: str | None = None


class FreeCounts(_Strict):
    """Free compartments per size class."""

    S: int = Field(ge=0)
    M: int = Field(ge=0)
    L: int = Field(ge=0)


class StatePayload(Message):
    """Retained cabinet state: no personal data."""

    ts: UtcTime
    intake: Intake
    free: FreeCounts
    blocked: list[int] = Field(default_factory=list, description="Blocked compartment ids.")


class AlertPayload(Message):
    """An alert raised (active) or cleared, on `alerts` (Art. 12)."""

    id: str
    ts: UtcTime
    kind: AlertKind
    severity: Severity
    compartment: int | None = None
    active: bool
    detail: str


# ------------------------------------------------------------------ carrier topics

class Command(_Strict):
    """A carrier command on `carriers/{carrier}/cmd`; `v` is checked before the schema."""

    v: int
    id: Id
    type: Annotated[str, Field(min_length=1, max_length=64)]
    ts: UtcTime
    body: dict[str, Any]
    sig: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    exp: UtcTime | None = None


class ErrorInfo(_Strict):
    """Why a command was refused: one of the daemon's stable codes (lockerd/domain/errors.py)."""

    code: ErrorCode
    message: str


class Reply(Message):
    """The answer to one command, on `carriers/{carrier}/reply`."""

    id: str | None = Field(description="The command id (null when it could not be read).")
    ok: bool
    result: Any = None
    error: ErrorInfo | None = None

    def to_json(self) -> dict[str, Any]:
        """Wire form: `result` only on success, `error` only on failure."""
        out: dict[str, Any] = {"v": 1, "id": self.id, "ok": self.ok}
        if self.ok:
            out["result"] = self.result
        elif self.error is not None:
            out["error"] = self.error.model_dump(mode="json")
        return out


class Event(Message):
    """A tracking event on `carriers/{carrier}/events`; `seq` counts per carrier from 1."""

    event_id: str
    seq: int = Field(ge=1)
    ts: UtcTime
    type: EventType
    body: dict[str, Any]


# ------------------------------------------------------------------ command bodies

CourierId = Annotated[str, Field(pattern=COURIER_PATTERN)]
Waybill = Annotated[str, Field(pattern=WAYBILL_PATTERN)]


class CourierGrantBody(_Strict):
    """`courier.grant`: let a courier of this carrier use the cabinet until `expires` (Art. 16)."""

    courier_id: CourierId
    pin_hash: Annotated[str, Field(min_length=16, max_length=256)] | None = None
    pin: Annotated[str, Field(pattern=r"^[0-9]{4,12}$")] | None = None
    expires: UtcTime

    @model_validator(mode="after")
    def _one_secret(self) -> CourierGrantBody:
        if (self.pin is None) == (self.pin_hash is None):
            raise ValueError("exactly one of pin and pin_hash is required")
        return self


class CourierRevokeBody(_Strict):
    """`courier.revoke`: withdraw a courier's access."""

    courier_id: CourierId


class ParcelExpectBody(_Strict):
    """`parcel.expect`: a pre-announced delivery (consent, Art. 22; flags, Art. 23)."""

    waybill: Waybill
    size: Literal["S", "M", "L"]
    consent: bool
    flags: list[Literal["damaged", "weight_mismatch", "fresh", "valuable"]] = Field(
        default_factory=list, max_length=4)


class ParcelRecallBody(_Strict):
    """`parcel.recall`: the carrier takes an announced or stored parcel back."""

    waybill: Waybill


class StateGetBody(_Strict):
    """`state.get`: no arguments; the reply's result is the state payload."""


COMMAND_BODIES: dict[str, type[BaseModel]] = {
    "courier.grant": CourierGrantBody,
    "courier.revoke": CourierRevokeBody,
    "parcel.expect": ParcelExpectBody,
    "parcel.recall": ParcelRecallBody,
    "state.get": StateGetBody,
}

# Every payload model, by the name its schema has in docs/asyncapi.yaml.
PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    "StatusOnline": StatusOnline,
    "StatusOffline": StatusOffline,
    "State": StatePayload,
    "Alert": AlertPayload,
    "Command": Command,
    "Reply": Reply,
    "Event": Event,
    "CourierGrantBody": CourierGrantBody,
    "CourierRevokeBody": CourierRevokeBody,
    "ParcelExpectBody": ParcelExpectBody,
    "ParcelRecallBody": ParcelRecallBody,
    "StateGetBody": StateGetBody,
}
