"""Offline courier passes at the edge: decode the token and check its carrier's Ed25519 signature.

The token (docs/passes.md) is `LP1.<payload>.<signature>`: `payload` is base64url (no padding)
of a JSON object, `signature` base64url (no padding) of the Ed25519 signature of the ASCII bytes
`LP1.<payload>`, made with the carrier's private key. The cabinet holds each carrier's public
key in its config and needs no network. What this module proves is only "this carrier signed
these claims"; whether they hold here and now (carrier authorised, cabinet, not-before, expiry,
revocation) is the domain's decision on the `PassClaim` it returns
(lockerd/domain/flows/core.py `_authenticate_pass`), so every rule stays pure and recorded.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import CARRIER_PATTERN, PASS_ID_PATTERN
from lockerd.domain.requests import PassClaim

PREFIX = "LP1."
#: Longest token accepted (a pass naming 20 cabinets is about 700 characters).
MAX_TOKEN = 2048
#: Longest validity a carrier may give a pass.
MAX_VALIDITY = timedelta(hours=24)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_FIELDS = {"v", "pid", "car", "cou", "cab", "grp", "nbf", "exp"}


class PassRefused(Exception):
    """The edge refused a token; `pass_id` and `carrier` when they could be read (for the record)."""

    def __init__(self, code: ErrorCode, message: str, *, pass_id: str | None = None,
                 carrier: str | None = None) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message
        self.pass_id = pass_id if pass_id and re.match(PASS_ID_PATTERN, pass_id) else None
        self.carrier = carrier if carrier and re.match(CARRIER_PATTERN, carrier) else None


def b64url_decode(text: str) -> bytes:
    """base64url without padding (RFC 4648 §5)."""
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_keys(carriers: Iterable[Any]) -> dict[str, bytes]:
    """carrier id -> raw public key, for the carriers of the config that have one."""
    return {c.id: base64.b64decode(c.pass_public_key) for c in carriers
            if c.pass_public_key is not None}


def _claim(payload: dict[str, Any]) -> PassClaim:
    if set(payload) - _FIELDS or payload.get("v") != 1:
        raise ValueError("unknown fields or version")
    nbf, exp = payload.get("nbf"), payload.get("exp")
    if not isinstance(nbf, int) or not isinstance(exp, int) or isinstance(nbf, bool) \
            or isinstance(exp, bool):
        raise ValueError("nbf and exp must be integer Unix seconds")
    cabinets = payload.get("cab", [])
    group = payload.get("grp")
    if not isinstance(cabinets, list) or not all(isinstance(c, str) for c in cabinets) \
            or len(cabinets) > 64 or (not cabinets and group is None):
        raise ValueError("cab must list cabinet ids, or grp name a group")
    if group is not None and not isinstance(group, str):
        raise ValueError("grp must be a string")
    not_before = datetime.fromtimestamp(nbf, UTC)
    expires = datetime.fromtimestamp(exp, UTC)
    if not timedelta(0) < expires - not_before <= MAX_VALIDITY:
        raise ValueError("a pass is valid for more than 0 s and at most 24 h")
    return PassClaim(carrier=payload.get("car"), courier_id=payload.get("cou"),
                     pass_id=payload.get("pid"), cabinets=tuple(cabinets), group=group,
                     not_before=not_before, expires=expires)


class PassVerifier:
    """Checks tokens against the carriers' public keys (no clock: time is the domain's)."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        self._keys = {carrier: Ed25519PublicKey.from_public_bytes(raw)
                      for carrier, raw in keys.items()}

    def check(self, token: str) -> PassClaim:
        """The verified claims of `token`, or PassRefused (malformed, wrong carrier, signature)."""
        token = token.strip()
        if len(token) > MAX_TOKEN or not token.startswith(PREFIX) or token.count(".") != 2:
            raise PassRefused(ErrorCode.PASS_MALFORMED, "not an LP1 pass")
        _, payload_b64, sig_b64 = token.split(".")
        try:
            payload = json.loads(b64url_decode(payload_b64))
            signature = b64url_decode(sig_b64)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise PassRefused(ErrorCode.PASS_MALFORMED, "pass is not base64url JSON") from None
        if not isinstance(payload, dict):
            raise PassRefused(ErrorCode.PASS_MALFORMED, "pass payload is not an object")
        pass_id, carrier = payload.get("pid"), payload.get("car")
        ids = {"pass_id": pass_id if isinstance(pass_id, str) else None,
               "carrier": carrier if isinstance(carrier, str) else None}
        key = self._keys.get(carrier) if isinstance(carrier, str) else None
        if key is None:
            raise PassRefused(ErrorCode.PASS_WRONG_CARRIER,
                              "no pass key for this carrier on this cabinet", **ids)
        try:
            key.verify(signature, f"{PREFIX}{payload_b64}".encode("ascii"))
        except InvalidSignature:
            raise PassRefused(ErrorCode.PASS_BAD_SIGNATURE, "pass signature does not match",
                              **ids) from None
        try:
            return _claim(payload)
        except (ValueError, ValidationError, OverflowError, OSError) as exc:
            raise PassRefused(ErrorCode.PASS_MALFORMED, f"pass claims invalid: {exc}"[:200],
                              **ids) from None
