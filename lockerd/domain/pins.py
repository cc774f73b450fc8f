"""Courier PINs: salted PBKDF2-SHA256 hashes, so the cabinet never keeps a PIN in clear."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import re

_PIN = re.compile(r"^[0-9]{6,12}$")
_HASH = re.compile(r"^pbkdf2_sha256\$([0-9]{1,8})\$([0-9a-f]{32,64})\$([0-9a-f]{64})$")
MAX_ITERATIONS = 10_000_000
#: Least PBKDF2 cost accepted for a hash supplied by a carrier.
MIN_SUPPLIED_ITERATIONS = 10_000


def pin_is_acceptable(pin: str) -> bool:
    """6-12 digits, not one repeated digit, not a straight run (123456, 987654)."""
    if not _PIN.match(pin):
        return False
    if len(set(pin)) == 1:
        return False
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    return steps not in ({1}, {9})


def hash_pin(pin: str, salt: bytes, iterations: int) -> str:
    """Encode a PIN as `pbkdf2_sha256$iterations$salt$hash` (hex)."""
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def pin_hash_is_valid(encoded: str, min_iterations: int = 1) -> bool:
    """A hash a carrier sent is well-formed, costly enough to resist guessing if leaked, and not so
    costly that checking it stalls the cabinet."""
    match = _HASH.match(encoded)
    return match is not None and max(1, min_iterations) <= int(match.group(1)) <= MAX_ITERATIONS


def verify_pin(pin: str, encoded: str) -> bool:
    """Constant-time check of a PIN against its stored hash; a malformed hash never matches."""
    match = _HASH.match(encoded)
    if match is None or not 1 <= int(match.group(1)) <= MAX_ITERATIONS or len(pin) > 64:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), bytes.fromhex(match.group(2)),
                                 int(match.group(1)))
    return hmac.compare_digest(digest.hex(), match.group(3))


_DUMMY_SALT = bytes(16)


def spend_pin_check(pin: str, iterations: int) -> bool:
    """Do the work of a PIN check that cannot succeed (no such courier): an unknown courier id
    then takes as long as a wrong PIN, so timing does not tell which ids exist. Always False."""
    hashlib.pbkdf2_hmac("sha256", pin.encode()[:64], _DUMMY_SALT, max(1, iterations))
    return False
