"""Issuing offline courier passes as a carrier would (tests and the demo only; production
carriers issue them in their own back office, see examples/issue_pass.py and docs/passes.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def demo_key(carrier: str) -> Ed25519PrivateKey:
    """A fixed, public test key per carrier: for the demo and tests, never for a real carrier."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(f"lockerd demo pass key: {carrier}".encode()).digest())


def public_b64(key: Ed25519PrivateKey) -> str:
    """The public half as the config's `pass_public_key` takes it (standard base64)."""
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def issue(key: Ed25519PrivateKey, *, carrier: str, courier_id: str, not_before: datetime,
          expires: datetime, cabinets: Sequence[str] = (), group: str | None = None,
          pass_id: str | None = None) -> str:
    """An `LP1.` token (docs/passes.md) signed with `key`."""
    claims: dict[str, object] = {"v": 1, "pid": pass_id or uuid.uuid4().hex[:16], "car": carrier,
                                 "cou": courier_id, "nbf": int(not_before.timestamp()),
                                 "exp": int(expires.timestamp())}
    if cabinets:
        claims["cab"] = list(cabinets)
    if group is not None:
        claims["grp"] = group
    payload = _b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    signed = f"LP1.{payload}"
    return f"{signed}.{_b64url(key.sign(signed.encode('ascii')))}"


def pass_id_of(token: str) -> str:
    """The pass id inside a token (no check)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["pid"])
