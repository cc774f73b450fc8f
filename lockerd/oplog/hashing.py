"""Salted hashes for pickup codes and courier PINs: the clear value is never stored."""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Literal

SecretKind = Literal["code", "pin"]

# scrypt cost per kind. A pickup code is tried against every parcel waiting in the cabinet,
# so it is cheap (~5 ms on x86, a few times that on a Pi); a PIN is checked against one
# courier row (~90 ms). The database is encrypted as well: these hashes are a second wall.
_COST: dict[str, tuple[int, int, int]] = {"code": (2**10, 8, 1), "pin": (2**14, 8, 1)}
SALT_BYTES = 16


def hash_secret(secret: str, kind: SecretKind, salt: bytes | None = None) -> tuple[bytes, bytes]:
    """(hash, salt) of a code or PIN with a fresh per-row salt unless one is given."""
    if not secret:
        raise ValueError("empty secret")
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    n, r, p = _COST[kind]
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return digest, salt


def verify_secret(secret: str, kind: SecretKind, digest: bytes | None, salt: bytes | None) -> bool:
    """Constant-time check of a candidate against a stored hash (False once purged)."""
    if not secret or digest is None or salt is None:
        return False
    candidate, _ = hash_secret(secret, kind, bytes(salt))
    return hmac.compare_digest(candidate, bytes(digest))
