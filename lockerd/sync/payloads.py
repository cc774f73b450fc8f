"""The pydantic models of every MQTT payload (docs/mqtt.md); docs/asyncapi.yaml is tested against them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from lockerd.app.events import AlertKind, Severity
from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import CABINET_ID_PATTERN, COURIER_PATTERN, WAYBILL_PATTERN
from lockerd.domain.pins import PIN_HASH_PATTERN, PIN_PATTERN
from lockerd.domain.timefmt import format_ts


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a zone (RFC 3339, e.g. 2026-01-31T08:00:00Z)")
    return value.astimezone(UTC)


#: RFC 3339 with a zone, as carriers may send it (docs/asyncapi.yaml `InTime`): a number or a
#: zone-less text is refused rather than guessed.
IN_TIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})$")
#: Every time lockerd sends: UTC, exactly milliseconds (`format_ts`; docs/asyncapi.yaml `Time`).
OUT_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_IN_TIME = re.compile(IN_TIME_PATTERN)


def _rfc3339(value: object) -> object:
    if not isinstance(value, str) or not _IN_TIME.match(value):
        raise ValueError("time must be RFC 3339 text with a zone, e.g. 2026-01-31T08:00:00.000Z")
    return value


UtcTime = Annotated[datetime, AfterValidator(_to_utc), PlainSerializer(format_ts, return_type=str)]
InTime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_to_utc),
                   PlainSerializer(format_ts, return_type=str)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

EventType = Literal[
    "parcel.deposited", "parcel.picked_up", "parcel.refused", "parcel.overdue",
    "parcel.returned", "parcel.notice_resent", "parcel.extended", "dropoff.received",
    "dropoff.collected", "dropoff.rejected", "courier.granted", "courier.revoked",
    "parcel.removed_by_staff", "dropoff.returned_to_sender",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Strict):
    """Base of every payload: unknown fields are refused, `v` is 1."""

    v: Literal[1] = Field(default=1, description="Payload version.")


# ------------------------------------------------------------------ out: status, state, alerts

class MaintenanceNotice(_Strict):
    """A planned interruption (guidance 004 §7), announced ahead of time."""

    starts_at: str = Field(pattern=OUT_TIME_PATTERN)
    ends_at: str = Field(pattern=OUT_TIME_PATTERN)
    reason: str
    active: bool = Field(description="The interruption is under way.")


class StatusOnline(Message):
    """Birth message, retained on `status` at every connect."""

    online: Literal[True] = True
    ts: UtcTime
    version: str = Field(description="lockerd version.")
    name: str = Field(description="Locker name (Art. 24).")
    address: str = Field(description="Locker address (Art. 24).")
    maintenance: MaintenanceNotice | None = Field(
        default=None, description="A planned interruption, from when it is planned until it ends.")


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
    ts: InTime
    body: dict[str, Any]
    sig: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    exp: InTime | None = None


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


class AnchorPayload(Message):
    """The cabinet's signed chain head (docs/oplog.md "Anchors"): retained on `chain` and in
    the envelope of every `parcel.*` event. `sig` is Ed25519 (base64) over the canonical bytes
    `lockerd-anchor/1\\n{cabinet}\\n{epoch}\\n{seq}\\n{hash}\\n{ts}`."""

    cabinet: Annotated[str, Field(pattern=CABINET_ID_PATTERN)]
    epoch: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    seq: int = Field(ge=1)
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    ts: Annotated[str, Field(pattern=OUT_TIME_PATTERN)]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    sig: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{86}==$")]


class Event(Message):
    """A tracking event on `carriers/{carrier}/events`; `seq` counts per carrier from 1 within
    its `epoch` (a random id fixed when the stream started; a recreated log starts a new one)."""

    event_id: str
    epoch: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    seq: int = Field(ge=1)
    ts: UtcTime
    type: EventType
    body: dict[str, Any]
    anchor: AnchorPayload | None = Field(
        default=None, description="The signed chain head at this event's operation "
                                  "(`parcel.*` events only).")


# ------------------------------------------------------------------ command bodies

CourierId = Annotated[str, Field(pattern=COURIER_PATTERN)]
Waybill = Annotated[str, Field(pattern=WAYBILL_PATTERN)]


class CourierGrantBody(_Strict):
    """`courier.grant`: let a courier of this carrier use the cabinet until `expires` (Art. 16)."""

    courier_id: CourierId
    pin_hash: Annotated[str, Field(pattern=PIN_HASH_PATTERN)] | None = None
    pin: Annotated[str, Field(pattern=PIN_PATTERN)] | None = None
    expires: InTime

    @model_validator(mode="after")
    def _one_secret(self) -> CourierGrantBody:
        if (self.pin is None) == (self.pin_hash is None):
            raise ValueError("exactly one of pin and pin_hash is required")
        return self


class CourierRevokeBody(_Strict):
    """`courier.revoke`: withdraw a courier's access."""

    courier_id: CourierId


ExpectFlag = Literal["damaged", "weight_mismatch", "fresh", "valuable"]


class ParcelExpectBody(_Strict):
    """`parcel.expect`: a pre-announced delivery (consent and the sender's choice, Art. 22;
    flags, agreement and declared weight, Art. 23). The delivery of that waybill obeys it."""

    waybill: Waybill
    size: Literal["S", "M", "L"]
    consent: bool = Field(description="The recipient agreed to locker delivery (Art. 22); "
                                      "false cannot be overridden at the panel.")
    sender_chose_locker: bool = Field(default=False,
                                      description="The sender named the locker as the address "
                                                  "(Art. 22 exception: no consent needed).")
    flags: list[ExpectFlag] = Field(default_factory=list, max_length=4)
    agreement: bool = Field(default=False,
                            description="The sender agreed to locker delivery of fresh produce "
                                        "or valuables (Art. 23 para. 2).")
    declared_weight_g: int | None = Field(default=None, ge=1, le=100_000,
                                          description="Weight on the waybill, grams.")

    @model_validator(mode="after")
    def _unique_flags(self) -> ParcelExpectBody:
        if len(set(self.flags)) != len(self.flags):
            raise ValueError("flags must not repeat")
        return self


class ParcelRecallBody(_Strict):
    """`parcel.recall`: the carrier takes an announced or stored parcel back."""

    waybill: Waybill


class ParcelNoticeBody(_Strict):
    """`parcel.notice`: send the Art. 24 notice of a waiting parcel again (current deadline)."""

    waybill: Waybill


class ParcelExtendBody(_Strict):
    """`parcel.extend`: push a waiting parcel's storage deadline back by `hours`."""

    waybill: Waybill
    hours: int = Field(ge=1, le=720, description="Hours to add (the cabinet's total limit applies).")


class StateGetBody(_Strict):
    """`state.get`: no arguments; the reply's result is the state payload."""


COMMAND_BODIES: dict[str, type[BaseModel]] = {
    "courier.grant": CourierGrantBody,
    "courier.revoke": CourierRevokeBody,
    "parcel.expect": ParcelExpectBody,
    "parcel.recall": ParcelRecallBody,
    "parcel.notice": ParcelNoticeBody,
    "parcel.extend": ParcelExtendBody,
    "state.get": StateGetBody,
}

# Every payload model, by the name its schema has in docs/asyncapi.yaml.
PAYLOAD_MODELS: dict[str, type[BaseModel]] = {
    "StatusOnline": StatusOnline,
    "StatusOffline": StatusOffline,
    "State": StatePayload,
    "Alert": AlertPayload,
    "Anchor": AnchorPayload,
    "CommandEnvelope": Command,
    "ReplyEnvelope": Reply,
    "EventEnvelope": Event,
    "CourierGrantBody": CourierGrantBody,
    "CourierRevokeBody": CourierRevokeBody,
    "ParcelExpectBody": ParcelExpectBody,
    "ParcelRecallBody": ParcelRecallBody,
    "ParcelNoticeBody": ParcelNoticeBody,
    "ParcelExtendBody": ParcelExtendBody,
    "StateGetBody": StateGetBody,
}
