"""The cabinet's device identity: an Ed25519 key pair, created at first start, kept 0600.

The private key signs what the cabinet says about its own log (anchors, lockerd.oplog.anchors);
the public key is enrolled at the operator (`lockerctl identity`) so carriers and the regulator
can check those signatures without trusting the cabinet afterwards. The key file is checked
like the log key (regular file, owned by the daemon user, no group/other access) and never
lives in the config.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from lockerd.config import Paths
from lockerd.oplog.errors import KeyRefused
from lockerd.oplog.secretfile import read_secret_file, write_private_file

IDENTITY_FILE = "identity.key"
IDENTITY_DIR = "identity"
SEED_BYTES = 32


def identity_dir(paths: Paths) -> Path:
    """Where the identity key and the anchor state live.

    `paths.identity_dir` when set; else next to the log key file when one is configured; else
    `<state_dir>/identity` (systemd's credentials directory is read-only, so a key created at
    first start cannot go there).
    """
    if paths.identity_dir is not None:
        return paths.identity_dir
    if paths.key_file is not None:
        return paths.key_file.parent
    return paths.state_dir / IDENTITY_DIR


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of the 32 raw public-key bytes, hex: what the operator compares at enrolment."""
    return hashlib.sha256(public_raw).hexdigest()


def key_id(public_raw: bytes) -> str:
    """The fingerprint's first 16 hex digits: names the signing key inside an anchor."""
    return fingerprint(public_raw)[:16]


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """The cabinet's Ed25519 private key (never printed) and where it came from."""

    private: Ed25519PrivateKey = field(repr=False)
    source: str = "memory"

    @property
    def public_raw(self) -> bytes:
        """The 32 raw public-key bytes (RFC 8032 encoding)."""
        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        """SHA-256 hex of the raw public key."""
        return fingerprint(self.public_raw)

    @property
    def key_id(self) -> str:
        """First 16 hex digits of the fingerprint."""
        return key_id(self.public_raw)

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over `data`."""
        return self.private.sign(data)

    @classmethod
    def generate(cls) -> DeviceIdentity:
        """A fresh key pair."""
        return cls(Ed25519PrivateKey.generate(), "generated")


def verify_signature(public_raw: bytes, signature: bytes, data: bytes) -> bool:
    """True when `signature` is a valid Ed25519 signature of `data` by `public_raw`."""
    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_identity(path: Path, owner_uid: int | None = None) -> DeviceIdentity:
    """Read the key file (64 hex digits of the Ed25519 seed), refusing an unsafe one."""
    data = read_secret_file(path, "device identity key", owner_uid)
    text = data.decode("ascii", errors="replace").strip()
    if len(text) != 2 * SEED_BYTES or any(c not in "0123456789abcdef" for c in text):
        raise KeyRefused(f"{path}: identity key must be {2 * SEED_BYTES} lowercase hex digits")
    return DeviceIdentity(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(text)), str(path))


def load_or_create(directory: Path, owner_uid: int | None = None) -> tuple[DeviceIdentity, bool]:
    """The identity in `directory`, created (0600) when it has none; (identity, created)."""
    path = directory / IDENTITY_FILE
    if path.exists() or path.is_symlink():
        return load_identity(path, owner_uid), False
    new = DeviceIdentity.generate()
    seed = new.private.private_bytes_raw()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private_file(path, (seed.hex() + "\n").encode("ascii"))
    except OSError as exc:
        raise KeyRefused(f"{path}: cannot create the device identity ({exc.strerror}); set "
                         "paths.identity_dir to a directory the daemon may write") from None
    return DeviceIdentity(new.private, str(path)), True
