"""Identity checks at the cabinet as pure values: a sender's real-name check (Art. 9, 18) and an
ID-checked handover of a government document (特投 spec, 投递 item 3).

How a check is made (reading the card, verifying a carrier's signature, hashing the number) is
the adapters' job (lockerd/parcels/identity.py); the domain only sees the result, which holds
nothing a person could be identified by in clear: the name and ID number masked, the number as a
keyed hash. Art. 9 para. 2 asks the operator to keep the result of every check it makes.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from lockerd.domain.timefmt import format_ts


class IdMethod(StrEnum):
    """How the identity was checked."""

    READER = "reader"                       # second-generation ID card on the cabinet's reader
    SIGNED_REFERENCE = "signed_reference"   # the carrier's real-name system, by signed token


class IdOutcome(StrEnum):
    """What the check found; only `passed` lets a drop-off or handover go on."""

    PASSED = "passed"
    EXPIRED = "expired"              # card read, validity ended
    NO_CARD = "no_card"              # nothing on the reader
    UNREADABLE = "unreadable"        # reader fault, garbled or invalid card
    NO_READER = "no_reader"          # the cabinet has none and no signed reference was shown
    BAD_SIGNATURE = "bad_signature"  # the reference is not signed by the carrier, or has expired


class Relation(StrEnum):
    """Who collects an ID-checked parcel: the recipient, or a proxy and their relation (特投)."""

    SELF = "self"
    FAMILY = "family"
    COLLEAGUE = "colleague"
    PROPERTY_MANAGEMENT = "property_management"
    OTHER = "other"


class Handover(StrEnum):
    """How a delivery is handed over: by code alone, or by code and the recipient's ID."""

    STANDARD = "standard"
    ID_CHECK = "id_check"


class IdentityCheck(BaseModel):
    """The recorded result of one check (masked; see docs/idcard.md for the fields per method).

    `id_hash` is HMAC-SHA256 of the ID number under the cabinet's key kept inside the encrypted
    log (reader checks only; a signed reference never shows the cabinet the number).
    `carrier_id_hash` is the same number under the carrier's shared key (docs/idcard.md), the
    value a handover is matched on. `reference` is the carrier's real-name reference id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: IdMethod
    outcome: IdOutcome
    checked_at: datetime
    name_masked: str | None = None
    id_masked: str | None = None
    id_hash: str | None = None
    carrier_id_hash: str | None = None
    sam_id: str | None = None
    reference: str | None = None
    relation: Relation | None = None

    @property
    def passed(self) -> bool:
        """The check lets the operation go on."""
        return self.outcome is IdOutcome.PASSED

    def facts(self) -> dict[str, Any]:
        """What the hash chain may hold of the check: how and with what outcome, nothing else."""
        return {"id_method": self.method.value, "id_outcome": self.outcome.value}

    def masked(self) -> dict[str, Any]:
        """The check as carriers and screens see it: masked, no hash of the cabinet's key."""
        out: dict[str, Any] = {"method": self.method.value, "outcome": self.outcome.value,
                               "checked_at": format_ts(self.checked_at),
                               "name_masked": self.name_masked, "id_masked": self.id_masked,
                               "sam_id": self.sam_id, "reference": self.reference}
        if self.relation is not None:
            out["relation"] = self.relation.value
        return out
