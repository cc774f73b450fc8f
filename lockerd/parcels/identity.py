"""Identity checks as the use cases need them: the card on the reader, or a carrier-signed token.

The card's clear fields live only inside `check_card` for the few microseconds it takes to mask
and hash them: nothing returned, logged or recorded holds the clear name, ID number or address
(docs/idcard.md). What comes out is a `lockerd.domain.identity.IdentityCheck`.

Signed real-name reference (a cabinet without a reader; Art. 18 with the carrier's real-name
system, seed text 002: the app's QR code): `rn1.<payload>.<signature>`, both parts base64url
without padding; the signature is Ed25519 by the carrier's real-name key over the ASCII bytes of
`rn1.<payload>`; the payload is JSON `{"carrier", "ref", "name_masked", "id_masked", "exp"}`
(`exp` Unix seconds). The cabinet holds the carrier's public key only (config).

Keyed hashes of the ID number (docs/idcard.md): `hmac-sha256:` + hex HMAC-SHA256 over the
number's 18 ASCII characters, check character upper case. With the cabinet's key (kept inside the
encrypted log) for the drop-off record; with the carrier's shared key for ID-checked handovers,
which is how the carrier computes `recipient_id_hash` in `parcel.expect`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Protocol

from lockerd.domain.identity import IdentityCheck, IdMethod, IdOutcome, Relation
from lockerd.drivers.errors import DriverError
from lockerd.drivers.idcard_frames import IdCard
from lockerd.parcels import ed25519
from lockerd.privacy import mask_id_number, mask_name

log = logging.getLogger(__name__)

#: The longest a screen may ask the reader to wait for a card (panel.v2 `card_wait_s`).
MAX_CARD_WAIT_S = 30.0
#: Pause between two looks at an empty reader while waiting for a card.
CARD_POLL_S = 0.3
TOKEN_PREFIX = "rn1"  # noqa: S105 -- a format tag, not a secret
HASH_PREFIX = "hmac-sha256:"
ID_KEY_NAME = "id-number.hmac"
"""The cabinet's ID-number hash key, a secret inside the encrypted log (like the code key)."""


class CardReader(Protocol):
    """What the checks need of an ID-card reader (lockerd.drivers.idcard.IdReader)."""

    async def read_card(self) -> IdCard | None:
        """The card on the reader, None when there is none."""

    async def sam_id(self) -> str:
        """The reader's SAM serial."""


def id_hash(key: bytes, id_number: str) -> str:
    """The keyed hash of an ID number, as lockerd and the carrier compute it."""
    text = id_number.strip().upper().encode("ascii")
    return HASH_PREFIX + hmac.new(key, text, hashlib.sha256).hexdigest()


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def sign_token(secret: bytes, *, carrier: str, ref: str, name_masked: str,
               id_masked: str, exp: int) -> str:
    """A real-name token as a carrier's system issues it (tests, the demo, carrier docs)."""
    payload = json.dumps({"carrier": carrier, "ref": ref, "name_masked": name_masked,
                          "id_masked": id_masked, "exp": exp}, separators=(",", ":"))
    head = f"{TOKEN_PREFIX}.{base64.urlsafe_b64encode(payload.encode()).decode().rstrip('=')}"
    sig = ed25519.sign(secret, head.encode("ascii"))
    return f"{head}.{base64.urlsafe_b64encode(sig).decode().rstrip('=')}"


class IdentityChecks:
    """Makes identity checks for the parcel flows; one per daemon.

    `reader` is None on a cabinet without one. `realname_keys` maps carrier -> Ed25519 public
    key (32 raw bytes); `carrier_hash_keys` carrier -> shared ID-hash key. `cabinet_key` returns
    the key kept in the log (loaded when the flows start).
    """

    def __init__(self, *, reader: CardReader | None, realname_keys: Mapping[str, bytes],
                 carrier_hash_keys: Mapping[str, bytes], cabinet_key: Callable[[], bytes],
                 clock: Callable[[], datetime], today: Callable[[], date]) -> None:
        self.reader = reader
        self._realname = dict(realname_keys)
        self._hash_keys = dict(carrier_hash_keys)
        self._cabinet_key = cabinet_key
        self._clock = clock
        self._today = today

    @property
    def has_reader(self) -> bool:
        """The cabinet has an ID-card reader."""
        return self.reader is not None

    def _failed(self, method: IdMethod, outcome: IdOutcome, sam_id: str | None = None
                ) -> IdentityCheck:
        return IdentityCheck(method=method, outcome=outcome, checked_at=self._clock(), sam_id=sam_id)

    async def check_card(self, *, carrier: str | None = None,
                         relation: Relation | None = None, wait_s: float = 0.0) -> IdentityCheck:
        """Read the card on the reader: passed, expired, no card or unreadable (never raises for
        a reader fault: the fault is the check's outcome). `carrier` adds the carrier-keyed hash
        (handover matching). `wait_s` (at most MAX_CARD_WAIT_S): while the reader is empty, look
        again until a card is laid on it or the time is up, so a screen that asks "lay your card
        on the reader" makes one check with one recorded outcome, not one per look."""
        reader = self.reader
        if reader is None:
            return self._failed(IdMethod.READER, IdOutcome.NO_READER)
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_CARD_WAIT_S)
        sam: str | None = None
        try:
            sam = await reader.sam_id()
            card = await reader.read_card()
            while card is None and time.monotonic() + CARD_POLL_S < deadline:
                await asyncio.sleep(CARD_POLL_S)
                card = await reader.read_card()
        except DriverError as exc:
            log.warning("id reader: no check: %s", type(exc).__name__)
            return self._failed(IdMethod.READER, IdOutcome.UNREADABLE, sam)
        if card is None:
            return self._failed(IdMethod.READER, IdOutcome.NO_CARD, sam)
        outcome = IdOutcome.EXPIRED if card.is_expired(self._today()) else IdOutcome.PASSED
        hash_key = self._hash_keys.get(carrier) if carrier is not None else None
        return IdentityCheck(
            method=IdMethod.READER, outcome=outcome, checked_at=self._clock(),
            name_masked=mask_name(card.name), id_masked=mask_id_number(card.id_number),
            id_hash=id_hash(self._cabinet_key(), card.id_number),
            carrier_id_hash=None if hash_key is None else id_hash(hash_key, card.id_number),
            sam_id=sam, relation=relation)

    def check_token(self, carrier: str, token: str) -> IdentityCheck:
        """Verify a carrier-signed real-name token: passed, or bad_signature (wrong carrier,
        wrong key, altered, expired, or not a token at all, like a bare `x`)."""
        bad = self._failed(IdMethod.SIGNED_REFERENCE, IdOutcome.BAD_SIGNATURE)
        key = self._realname.get(carrier)
        parts = token.strip().split(".")
        if key is None or len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return bad
        try:
            if not ed25519.verify(key, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64(parts[2])):
                return bad
            data = json.loads(_b64(parts[1]))
        except (ValueError, binascii.Error, UnicodeError):
            return bad
        if not isinstance(data, dict) or data.get("carrier") != carrier:
            return bad
        exp, ref = data.get("exp"), data.get("ref")
        now = self._clock()
        if not isinstance(exp, int) or datetime.fromtimestamp(exp, UTC) < now \
                or not isinstance(ref, str) or not 0 < len(ref) <= 64:
            return bad
        return IdentityCheck(method=IdMethod.SIGNED_REFERENCE, outcome=IdOutcome.PASSED,
                             checked_at=now,
                             name_masked=mask_name(str(data.get("name_masked") or "")) or None,
                             id_masked=mask_id_number(str(data.get("id_masked") or "")) or None,
                             reference=ref)

    async def for_dropoff(self, carrier: str, token: str, wait_s: float = 0.0) -> IdentityCheck:
        """The sender's check (Art. 18): the card on a cabinet with a reader (waiting up to
        `wait_s` for one), else the token."""
        if self.reader is not None:
            return await self.check_card(wait_s=wait_s)
        if not token.strip():
            return self._failed(IdMethod.SIGNED_REFERENCE, IdOutcome.NO_READER)
        return self.check_token(carrier, token)
