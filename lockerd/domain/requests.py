"""Validated inputs of domain commands (the panel API and MQTT bridge build these)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lockerd.domain.identity import Handover
from lockerd.domain.ids import (
    CARRIER_PATTERN,
    COURIER_PATTERN,
    PASS_ID_PATTERN,
    WAYBILL_PATTERN,
    Size,
)

ID_HASH_PATTERN = r"^hmac-sha256:[0-9a-f]{64}$"


class Request(BaseModel):
    """Base: immutable, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PassClaim(Request):
    """What an offline courier pass says, once the edge has checked its carrier's signature
    (lockerd/parcels/passes.py); the domain checks the rest: carrier, cabinet, time, revocation."""

    carrier: str = Field(pattern=CARRIER_PATTERN)
    courier_id: str = Field(pattern=COURIER_PATTERN)
    pass_id: str = Field(pattern=PASS_ID_PATTERN)
    cabinets: tuple[str, ...] = ()
    group: str | None = None
    not_before: datetime
    expires: datetime


class CourierAuth(Request):
    """Courier credentials typed on the panel, or a verified pass; checked again on every command
    (revocation is immediate)."""

    carrier: str = Field(pattern=CARRIER_PATTERN)
    courier_id: str = Field(pattern=COURIER_PATTERN)
    pin: str | None = Field(default=None, min_length=1, max_length=32, repr=False)
    pass_claim: PassClaim | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> CourierAuth:
        if (self.pin is None) == (self.pass_claim is None):
            raise ValueError("exactly one of pin and pass_claim")
        if self.pass_claim is not None and (self.pass_claim.carrier, self.pass_claim.courier_id
                                            ) != (self.carrier, self.courier_id):
            raise ValueError("the pass names another courier")
        return self


class Delivery(Request):
    """What the courier declares at the panel for one parcel (Art. 22, 23)."""

    waybill: str = Field(pattern=WAYBILL_PATTERN)
    size: Size
    consent: bool = Field(default=False, description="Recipient agreed to locker delivery (Art. 22).")
    sender_chose_locker: bool = Field(default=False,
                                      description="The sender chose locker delivery (Art. 22).")
    damaged: bool = Field(default=False, description="Outer packaging visibly damaged.")
    declared_weight_g: int | None = Field(default=None, ge=0, le=100_000)
    measured_weight_g: int | None = Field(default=None, ge=0, le=100_000)
    fresh: bool = Field(default=False, description="Fresh produce.")
    valuable: bool = Field(default=False, description="Valuables.")
    agreement: bool = Field(default=False,
                            description="Sender and recipient agreed to locker delivery of fresh "
                                        "produce or valuables.")


class Expect(Request):
    """A carrier's pre-announcement of a delivery (`parcel.expect`, docs/mqtt.md).

    What the carrier knows from the waybill and the recipient decides the deposit: its consent
    (Art. 22) cannot be overridden at the panel, and each of its Art. 23 flags refuses the
    delivery (fresh produce and valuables only without the sender's agreement).
    """

    waybill: str = Field(pattern=WAYBILL_PATTERN)
    size: Size
    consent: bool = Field(default=False, description="The recipient agreed to locker delivery.")
    sender_chose_locker: bool = Field(default=False,
                                      description="The sender named this locker as the address.")
    damaged: bool = Field(default=False, description="Packaging noted damaged on the way.")
    weight_mismatch: bool = Field(default=False,
                                  description="Weight noted different from the waybill on the way.")
    fresh: bool = False
    valuable: bool = False
    agreement: bool = Field(default=False,
                            description="The sender's agreement to locker delivery of fresh "
                                        "produce or valuables (Art. 23 para. 2).")
    declared_weight_g: int | None = Field(default=None, ge=0, le=100_000)
    handover: Handover = Field(default=Handover.STANDARD,
                               description="id_check: handed over only against the recipient's "
                                           "ID card or a proxy's with the relation (government "
                                           "documents); needs a cabinet with a reader.")
    recipient_id_hash: str | None = Field(
        default=None, pattern=ID_HASH_PATTERN, repr=False,
        description="With id_check: the carrier's keyed hash of the recipient's ID number "
                    "(docs/idcard.md), never the number.")

    @model_validator(mode="after")
    def _hash_with_id_check(self) -> Expect:
        if (self.handover is Handover.ID_CHECK) != (self.recipient_id_hash is not None):
            raise ValueError("recipient_id_hash goes with handover id_check, and only with it")
        return self


class Dropoff(Request):
    """What a sender provides to drop a parcel off (Art. 11, 18, 19)."""

    carrier: str = Field(pattern=CARRIER_PATTERN)
    size: Size
    waybill: str | None = Field(default=None, pattern=WAYBILL_PATTERN)
    verification_ref: str = Field(default="", max_length=512,
                                  description="On a cabinet without an ID-card reader: the "
                                              "carrier-signed real-name token the sender's app "
                                              "shows (docs/idcard.md); never the ID number.")
    declared_contents: str = Field(default="", max_length=200)
    ack_insured_value: bool = Field(default=False,
                                    description="Sender acknowledged the insured-value rules.")
    ack_prohibited_items: bool = Field(default=False,
                                       description="Sender acknowledged the prohibited-items list.")


class DoorFailure(StrEnum):
    """Why a begun door operation did not complete."""

    NOT_OPENED = "not_opened"     # board failed / door never read open: nothing happened
    JAMMED = "jammed"             # latch jammed: compartment blocked
    NOT_CLOSED = "not_closed"     # door never closed within the timeout: compartment blocked
    # the board's reply to the pulse was lost and the door could not be read: it may have
    # opened, so the compartment is held (blocked) until a door reading or staff settle it
    STATE_UNKNOWN = "state_unknown"
    # Boards with occupancy sensors (Kerong infrared): a deposit counts only with the item seen,
    # a pickup only with the compartment seen empty.
    ITEM_NOT_SEEN = "item_not_seen"          # deposit closed, sensor sees nothing: blocked
    ITEM_STILL_INSIDE = "item_still_inside"  # pickup closed, the parcel is still there


class RefusalReason(StrEnum):
    """Why a recipient refuses a parcel on the spot (Art. 26)."""

    DELAYED = "delayed"
    DAMAGED = "damaged"
    SHORT = "short"
    WRONG_ITEM = "wrong_item"
    OTHER = "other"


class RejectReason(StrEnum):
    """Why a courier rejects a drop-off at collection (Art. 20, 21)."""

    MISMATCH = "mismatch"
    PROHIBITED = "prohibited"
    PACKAGING = "packaging"
    OTHER = "other"
