#!/usr/bin/env python3
"""Issue an offline courier pass for lockerd cabinets, as a carrier's back office would.

Needs only the `cryptography` package; the format is docs/passes.md. The carrier keeps the
Ed25519 private key (32-byte seed, hex, in a file readable by the issuing service only) and
gives each cabinet's operator the public key for `[[carriers]] pass_public_key`.

    # once: make a key pair, print the public key for the cabinets' config
    python3 examples/issue_pass.py --new-key sf-pass.key
    # a pass for courier c-101, valid 8 hours from now, at two cabinets
    python3 examples/issue_pass.py --key sf-pass.key --carrier sf --courier c-101 \
        --cabinet CAB-0001 --cabinet CAB-0002 --hours 8
    # ... or at every cabinet of a group
    python3 examples/issue_pass.py --key sf-pass.key --carrier sf --courier c-101 \
        --group haidian-north --hours 8

The token is printed on stdout (show it as a QR code at the kiosk, or give it to
`lockerctl panel login --pass FILE`); the pass id and expiry go to stderr — keep them: a
revocation (`courier.revoke_pass`) names both.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAX_HOURS = 24


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_key(path: Path) -> Ed25519PrivateKey:
    """The private key from its hex seed file."""
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))


def public_b64(key: Ed25519PrivateKey) -> str:
    """What the cabinet's config takes as `pass_public_key`."""
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def issue(key: Ed25519PrivateKey, claims: dict[str, object]) -> str:
    """`LP1.<payload>.<signature>` over the canonical JSON of the claims."""
    payload = b64url(json.dumps(claims, sort_keys=True, separators=(",", ":")).encode())
    signed = f"LP1.{payload}"
    return f"{signed}.{b64url(key.sign(signed.encode('ascii')))}"


def main() -> int:
    """Parse the arguments, make a key or issue a pass."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--new-key", type=Path, help="create a key file (0600) and print its public key")
    p.add_argument("--key", type=Path, help="the carrier's private key file")
    p.add_argument("--carrier")
    p.add_argument("--courier")
    p.add_argument("--cabinet", action="append", default=[], help="a cabinet id (repeatable)")
    p.add_argument("--group", help="a cabinet group instead of (or besides) cabinet ids")
    p.add_argument("--hours", type=float, default=8.0, help=f"validity, at most {MAX_HOURS}")
    p.add_argument("--not-before", type=int, help="Unix seconds (default: now)")
    p.add_argument("--pass-id", help="default: random")
    a = p.parse_args()
    if a.new_key:
        fd = os.open(a.new_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        print(public_b64(load_key(a.new_key)))
        return 0
    if not (a.key and a.carrier and a.courier and (a.cabinet or a.group)):
        p.error("--key, --carrier, --courier and --cabinet or --group are needed")
    if not 0 < a.hours <= MAX_HOURS:
        p.error(f"--hours must be more than 0 and at most {MAX_HOURS}")
    nbf = a.not_before if a.not_before is not None else int(time.time())
    claims: dict[str, object] = {"v": 1, "pid": a.pass_id or uuid.uuid4().hex[:16],
                                 "car": a.carrier, "cou": a.courier, "nbf": nbf,
                                 "exp": nbf + int(a.hours * 3600)}
    if a.cabinet:
        claims["cab"] = a.cabinet
    if a.group:
        claims["grp"] = a.group
    print(issue(load_key(a.key), claims))
    print(f"pass_id={claims['pid']} expires={claims['exp']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
