"""The cabinet's Ed25519 device key (minimal loader; issue 17's identity branch owns the full one).

Kept like the log key: a 0600 file next to it (`device.key` beside `paths.key_file`, or in
$CREDENTIALS_DIRECTORY), never in the config. Created at first use when the directory is
writable. The regulator report is signed with it so anyone holding the public key (printed by
`lockerctl report --verify`, enrolled at the operator) can check a report offline.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lockerd.oplog.errors import KeyRefused
from lockerd.oplog.keys import key_path

DEVICE_KEY_NAME = "device.key"
_SEED_BYTES = 32


def public_fingerprint(raw_public: bytes) -> str:
    """Short identifier of a public key: first 16 hex digits of its SHA-256."""
    return hashlib.sha256(raw_public).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """The private key and its public half (raw 32 bytes, base64 for documents)."""

    private: Ed25519PrivateKey = field(repr=False)

    @property
    def public_raw(self) -> bytes:
        """The 32-byte public key."""
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_b64(self) -> str:
        """The public key as standard base64 (what documents carry)."""
        return base64.b64encode(self.public_raw).decode()

    @property
    def fingerprint(self) -> str:
        """Non-secret short id for records and enrolment."""
        return public_fingerprint(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature of `data`."""
        return self.private.sign(data)


def device_key_path(key_file: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """`device.key` in the directory of the log key."""
    return key_path(key_file, env).parent / DEVICE_KEY_NAME


def load_or_create(path: Path) -> DeviceKey:
    """Load the 32-byte seed (hex) from `path`, creating it 0600 when absent; refuse unsafe files."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                     0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(os.urandom(_SEED_BYTES).hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
        raise KeyRefused(f"{path}: device key must be a regular file readable by its owner only")
    text = path.read_text().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        seed = b""
    if len(seed) != _SEED_BYTES:
        raise KeyRefused(f"{path}: device key must be {2 * _SEED_BYTES} hex digits")
    return DeviceKey(Ed25519PrivateKey.from_private_bytes(seed))


def public_key(raw_b64: str) -> Ed25519PublicKey:
    """A public key from its base64 text (raises ValueError when it is not 32 bytes)."""
    raw = base64.b64decode(raw_b64, validate=True)
    if len(raw) != _SEED_BYTES:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)
