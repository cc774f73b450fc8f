"""Courier PINs: salted PBKDF2-SHA256 hashes as PHC strings, so the cabinet never keeps a PIN in clear.

The one string format (docs/mqtt.md, `pin_hash`) is the PHC string format with standard base64
without padding: `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`, the hash being 32 bytes of
PBKDF2-HMAC-SHA256 over the PIN's ASCII digits. The patterns below are the ones the contract
document states (tests/sync/test_contract.py compares them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

#: A PIN as typed: 6-12 digits (the contract's `pin` pattern).
PIN_PATTERN = r"^[0-9]{6,12}$"
_PIN = re.compile(PIN_PATTERN)
MAX_ITERATIONS = 10_000_000
#: Least PBKDF2 cost accepted for a hash supplied by a carrier.
MIN_SUPPLIED_ITERATIONS = 10_000
#: A `pin_hash` a carrier may send: iterations 10 000 - 10 000 000, salt 16-64 bytes, hash 32 bytes.
PIN_HASH_PATTERN = (r"^\$pbkdf2-sha256\$i=(?:[1-9][0-9]{4,6}|10000000)"
                    r"\$[A-Za-z0-9+/]{22,86}\$[A-Za-z0-9+/]{43}$")
_PHC = re.compile(r"^\$pbkdf2-sha256\$i=([1-9][0-9]{0,7})\$([A-Za-z0-9+/]{22,86})\$([A-Za-z0-9+/]{43})$")
# Written by lockerd before the PHC format; still read so couriers granted then keep working.
_LEGACY = re.compile(r"^pbkdf2_sha256\$([0-9]{1,8})\$([0-9a-f]{32,64})\$([0-9a-f]{64})$")


def _run(step: int) -> str:
    """A straight run of digits, each `step` after the one before (mod 10), as a regex."""
    return "^(?:" + "|".join(f"{d}(?={(d + step) % 10}|$)" for d in range(10)) + ")+$"


#: PINs refused as `weak_pin`: one repeated digit, a straight run up or down (wrapping 9 to 0:
#: 123456, 987654, 890123). The contract document states these same patterns.
WEAK_PIN_PATTERNS: tuple[str, ...] = (r"^([0-9])\1+$", _run(1), _run(9))
_WEAK = tuple(re.compile(p) for p in WEAK_PIN_PATTERNS)


def pin_is_acceptable(pin: str) -> bool:
    """6-12 digits, not one repeated digit, not a straight run (123456, 987654, 890123)."""
    return _PIN.match(pin) is not None and not any(w.match(pin) for w in _WEAK)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes | None:
    """Decoded bytes of canonical unpadded base64 (unused trailing bits zero), else None: one
    hash has one spelling."""
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


def hash_pin(pin: str, salt: bytes, iterations: int) -> str:
    """Encode a PIN as `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (base64, no padding)."""
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return f"$pbkdf2-sha256$i={iterations}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    """(iterations, salt, hash) of a PHC or legacy string, None when malformed or out of range."""
    match = _PHC.match(encoded)
    if match is not None:
        salt, digest = _unb64(match.group(2)), _unb64(match.group(3))
        if salt is None or digest is None or len(salt) < 16 or len(digest) != 32:
            return None
    else:
        match = _LEGACY.match(encoded)
        if match is None:
            return None
        salt, digest = bytes.fromhex(match.group(2)), bytes.fromhex(match.group(3))
    iterations = int(match.group(1))
    if not 1 <= iterations <= MAX_ITERATIONS:
        return None
    return iterations, salt, digest


def salt_of(encoded: str) -> bytes:
    """The salt inside a stored hash (the couriers table repeats it), empty when malformed."""
    parsed = _parse(encoded)
    return b"" if parsed is None else parsed[1]


def pin_hash_is_valid(encoded: str, min_iterations: int = 1) -> bool:
    """A PHC hash is well-formed, costly enough to resist guessing if leaked, and not so costly
    that checking it stalls the cabinet. Only PHC strings: the legacy form is never accepted new."""
    parsed = _parse(encoded) if _PHC.match(encoded) else None
    return parsed is not None and max(1, min_iterations) <= parsed[0]


def verify_pin(pin: str, encoded: str) -> bool:
    """Constant-time check of a PIN against its stored hash; a malformed hash never matches."""
    parsed = _parse(encoded)
    if parsed is None or len(pin) > 64:
        return False
    iterations, salt, expected = parsed
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


_DUMMY_SALT = bytes(16)


def spend_pin_check(pin: str, iterations: int) -> bool:
    """Do the work of a PIN check that cannot succeed (no such courier): an unknown courier id
    then takes as long as a wrong PIN, so timing does not tell which ids exist. Always False."""
    hashlib.pbkdf2_hmac("sha256", pin.encode()[:64], _DUMMY_SALT, max(1, iterations))
    return False
