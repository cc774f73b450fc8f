"""Ed25519 for the carriers' real-name tokens: three small functions over `cryptography`.

One audited implementation serves the whole daemon (the device identity and the anchors use the
same library); this module only fixes the raw-bytes interface the token code wants: 32-byte keys,
64-byte signatures, and a verify that answers False instead of raising.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def public_key(secret: bytes) -> bytes:
    """The 32-byte public key of a 32-byte secret key."""
    key = Ed25519PrivateKey.from_private_bytes(secret).public_key()
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(secret: bytes, message: bytes) -> bytes:
    """A 64-byte signature (tests and the demo issue real-name tokens with it)."""
    return Ed25519PrivateKey.from_private_bytes(secret).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when `signature` is the key's signature of `message`; False for anything else."""
    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
