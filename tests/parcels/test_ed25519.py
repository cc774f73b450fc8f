"""The pure-Python Ed25519 against RFC 8032 section 7.1 test vectors, and the real-name token checks."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lockerd.demo.realname import DEMO_REALNAME_SECRET, demo_token
from lockerd.domain.identity import IdMethod, IdOutcome
from lockerd.parcels import ed25519
from lockerd.parcels.identity import IdentityChecks, id_hash

# RFC 8032, 7.1: TEST 1 (empty message), TEST 2 (one byte), TEST 3 (two bytes)
VECTORS = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), VECTORS)
def test_rfc8032_vectors(secret: str, public: str, message: str, signature: str) -> None:
    sk, pk, msg, sig = (bytes.fromhex(x) for x in (secret, public, message, signature))
    assert ed25519.public_key(sk) == pk
    assert ed25519.sign(sk, msg) == sig
    assert ed25519.verify(pk, msg, sig)
    assert not ed25519.verify(pk, msg + b"!", sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not ed25519.verify(pk, msg, flipped)
    assert not ed25519.verify(pk, msg, sig[:32] + (2**253).to_bytes(32, "little"))  # s >= L
    assert not ed25519.verify(pk[:31], msg, sig)


def _checks() -> IdentityChecks:
    return IdentityChecks(reader=None,
                          realname_keys={"sf": ed25519.public_key(DEMO_REALNAME_SECRET)},
                          carrier_hash_keys={}, cabinet_key=lambda: b"k" * 32,
                          clock=lambda: datetime.now(UTC), today=date.today)


def test_tokens() -> None:
    checks = _checks()
    good = checks.check_token("sf", demo_token("sf"))
    assert (good.method, good.outcome, good.reference) == (IdMethod.SIGNED_REFERENCE,
                                                          IdOutcome.PASSED, "RN-7f3a9c21")
    assert (good.name_masked, good.id_masked, good.id_hash) == ("测*", "9****************9", None)
    for bad in ("x", "", "rn1.x.y", demo_token("yto"), demo_token("sf", valid_s=-5),
                demo_token("sf", secret=bytes(32)), demo_token("sf").replace("rn1", "rn2", 1)):
        assert checks.check_token("sf", bad).outcome is IdOutcome.BAD_SIGNATURE, bad


def test_id_hash_is_what_the_carrier_computes() -> None:
    """docs/idcard.md: HMAC-SHA256 over the 18 ASCII characters, check character upper case."""
    import hashlib
    import hmac
    key = bytes(range(32))
    want = hmac.new(key, b"99010420000229007X", hashlib.sha256).hexdigest()
    assert id_hash(key, "99010420000229007x ") == "hmac-sha256:" + want
