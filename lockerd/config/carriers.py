"""[[carriers]]: the carriers authorised to use the cabinet (Art. 16)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from lockerd.config.base import Strict
from lockerd.domain.ids import CARRIER_PATTERN


class Carrier(Strict):
    """A carrier (express company) authorised to use the cabinet (Art. 16)."""

    id: str = Field(description="Carrier id as used in MQTT topics.", pattern=CARRIER_PATTERN)
    name: str = Field(description="Display name.", min_length=1, max_length=64)
    hmac_key_file: Path | None = Field(
        default=None,
        description="File holding the HMAC-SHA256 key for command signatures; when set, "
                    "unsigned commands are refused.")
    realname_public_key: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{64}$",
        description="Ed25519 public key (64 hex digits) of the carrier's real-name system: on "
                    "a cabinet without an ID-card reader a drop-off needs a token signed with "
                    "it (docs/idcard.md). Not a secret.")
    id_hash_key_file: Path | None = Field(
        default=None,
        description="File holding the key (64 hex digits) shared with the carrier for keyed "
                    "hashes of ID numbers: `recipient_id_hash` of ID-checked handovers "
                    "(docs/idcard.md). A secret: 0600, like hmac_key_file.")
    pass_public_key: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9+/]{43}=$",
        description="The carrier's Ed25519 public key (32 bytes, standard base64) that signs its "
                    "offline courier passes (docs/passes.md); unset: its passes are refused.")
    platform: bool = Field(
        default=False,
        description="The operator's platform: may request the regulator report over MQTT "
                    "(report.request); other carriers are refused not_permitted.")
    require_expectation: bool = Field(
        default=False,
        description="Deliver only waybills this carrier announced with parcel.expect (the "
                    "announcement carries the recipient's consent and the Art. 23 flags).")
