"""The demo's (and the tests') carrier real-name system: a published signing key and its tokens.

A cabinet without an ID-card reader takes a drop-off on a token the carrier's real-name system
signed (docs/idcard.md). The demo and the tests play that system with this key; being published,
it must never be trusted by a production config.
"""

from __future__ import annotations

import time

from lockerd.parcels import ed25519
from lockerd.parcels.identity import sign_token

DEMO_REALNAME_SECRET = bytes.fromhex("4c6f636b6572642064656d6f207265616c6e616d65206b6579202d2d206e6f21")
DEMO_REALNAME_PUBLIC = ed25519.public_key(DEMO_REALNAME_SECRET).hex()


def demo_token(carrier: str, ref: str = "RN-7f3a9c21", *, valid_s: int = 30 * 86400,
               secret: bytes = DEMO_REALNAME_SECRET) -> str:
    """A token for a fictional sender (测试一), valid `valid_s` seconds from now (long: the demo
    and the tests move the cabinet clock days ahead)."""
    return sign_token(secret, carrier=carrier, ref=ref, name_masked="测*",
                      id_masked="9****************9", exp=int(time.time()) + valid_s)
