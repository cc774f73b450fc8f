"""What the screen's page may post: strict models, checked before anything reaches the daemon.

The patterns are the daemon's own (lockerd/domain/ids.py), so a value the kiosk lets through
is never refused for its shape one layer further down; the daemon still checks everything.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lockerd.domain.identity import Relation
from lockerd.domain.ids import CARRIER_PATTERN, COURIER_PATTERN, PARCEL_ID_PATTERN, WAYBILL_PATTERN, Size
from lockerd.domain.requests import RefusalReason, RejectReason

CODE_PATTERN = r"^[0-9]{6,8}$"
OP_PATTERN = r"^[0-9a-f]{16}$"
TERMS_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"
#: The longest the screen waits for an ID card on the reader (the daemon allows as long).
CARD_WAIT_MAX_S = 30.0


class Form(BaseModel):
    """Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Pickup(Form):
    """The recipient's code, and the fee shown and accepted on the screen (Art. 25)."""

    code: str = Field(pattern=CODE_PATTERN, repr=False)
    accept_fee_cents: int = Field(default=0, ge=0, le=10_000_000)
    # an ID-checked parcel: whose card is on the reader, and how long to wait for it
    relation: Relation | None = None
    card_wait_s: float = Field(default=0.0, ge=0.0, le=CARD_WAIT_MAX_S)


class Refuse(Form):
    """A refusal on the spot (Art. 26) for the screen's open pickup."""

    op: str = Field(pattern=OP_PATTERN)
    reason: RefusalReason


class Login(Form):
    """A courier's credentials: carrier, courier id and PIN, or an offline pass (docs/passes.md)."""

    carrier: str | None = Field(default=None, pattern=CARRIER_PATTERN)
    courier_id: str | None = Field(default=None, pattern=COURIER_PATTERN)
    pin: str | None = Field(default=None, min_length=1, max_length=32, repr=False)
    pass_token: str | None = Field(default=None, alias="pass", min_length=1, max_length=2048,
                                   repr=False)

    @model_validator(mode="after")
    def _credentials(self) -> Login:
        if self.pass_token is None and None in (self.carrier, self.courier_id, self.pin):
            raise ValueError("give carrier, courier_id and pin, or a pass")
        return self


class Deliver(Form):
    """One parcel and what the courier declares for it (Art. 22, 23)."""

    waybill: str = Field(pattern=WAYBILL_PATTERN)
    size: Size
    consent: bool = False
    sender_chose_locker: bool = False
    damaged: bool = False
    fresh: bool = False
    valuable: bool = False
    agreement: bool = False


class ParcelChoice(Form):
    """A worklist item to collect or take back."""

    parcel_id: str = Field(pattern=PARCEL_ID_PATTERN)


class Verdict(Form):
    """The courier's verdict on an open drop-off (Art. 20, 21)."""

    op: str = Field(pattern=OP_PATTERN)
    accept: bool
    reason: RejectReason | None = None


class Send(Form):
    """A sender's drop-off (Art. 11, 18, 19) and the version of the terms shown."""

    carrier: str = Field(pattern=CARRIER_PATTERN)
    size: Size
    verification_ref: str = Field(max_length=512)
    declared_contents: str = Field(max_length=200)
    ack_insured_value: bool
    ack_prohibited_items: bool
    terms_version: str = Field(pattern=TERMS_PATTERN)
    card_wait_s: float = Field(default=0.0, ge=0.0, le=CARD_WAIT_MAX_S)
