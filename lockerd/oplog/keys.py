"""Operation-log key: loaded from a 0600 key file or systemd credentials, refused when unsafe."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lockerd.oplog.errors import KeyRefused, RekeyRefused
from lockerd.oplog.secretfile import fsync_dir, read_secret_file, write_private_file
from lockerd.oplog.sqlcipher import RAW_KEY_BYTES, key_literal

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "oplog.key"
KEY_BYTES = RAW_KEY_BYTES
#: Fewer distinct byte values than this in a 32-byte key means a pattern (see parse_key_text).
MIN_DISTINCT = 16

# The key printed in the documentation and examples. Anyone can read it, so a database keyed
# with it is not encrypted at rest in any useful sense: the daemon refuses to start with it.
EXAMPLE_KEY_HEX = "0123456789abcdef" * 4


@dataclass(frozen=True, slots=True)
class OplogKey:
    """A 256-bit raw SQLCipher key (no passphrase KDF) and where it came from."""

    raw: bytes = field(repr=False)
    source: str = "memory"

    def __post_init__(self) -> None:
        if len(self.raw) != KEY_BYTES:
            raise KeyRefused(f"operation-log key must be {KEY_BYTES} bytes, got {len(self.raw)}")

    @property
    def pragma_literal(self) -> str:
        """The blob literal for PRAGMA key/rekey (x'..' selects a raw key, skipping PBKDF2)."""
        return key_literal(self.raw)

    @property
    def fingerprint(self) -> str:
        """Short non-secret identifier for records (first 8 hex of SHA-256 of the key)."""
        return hashlib.sha256(b"lockerd-oplog-key:" + self.raw).hexdigest()[:8]

    @classmethod
    def generate(cls) -> OplogKey:
        """A fresh random key."""
        return cls(secrets.token_bytes(KEY_BYTES), "generated")


def parse_key_text(text: str, source: str) -> OplogKey:
    """Parse 64 hex digits (what `openssl rand -hex 32` prints); refuse the example key."""
    cleaned = text.strip()
    if len(cleaned) != 2 * KEY_BYTES or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        raise KeyRefused(f"{source}: key must be {2 * KEY_BYTES} hex digits "
                         "(create one with: openssl rand -hex 32)")
    if cleaned.lower() == EXAMPLE_KEY_HEX:
        raise KeyRefused(f"{source}: this is the published example key; generate a real one "
                         "with: openssl rand -hex 32")
    raw = bytes.fromhex(cleaned)
    if len(set(raw)) == 1:
        raise KeyRefused(f"{source}: key is a single repeated byte; generate a random one")
    if _obviously_not_random(raw):
        raise KeyRefused(f"{source}: key has obviously low entropy (a pattern, not random "
                         "bytes); generate one with: openssl rand -hex 32")
    return OplogKey(raw, source)


def _obviously_not_random(raw: bytes) -> bool:
    """A repeated pattern or a counting sequence, never a random key.

    32 random bytes have about 30 distinct values; fewer than MIN_DISTINCT happens with a
    probability far below 1e-9, so no real key is refused. A constant step (00 01 02 ...,
    ff fe fd ...) is the other hand-typed shape."""
    if len(set(raw)) < MIN_DISTINCT:
        return True
    steps = {(b - a) % 256 for a, b in itertools.pairwise(raw)}
    return len(steps) == 1


def key_path(key_file: Path | None, env: Mapping[str, str] | None = None) -> Path:
    """Which file holds the key: the configured one, else $CREDENTIALS_DIRECTORY/oplog.key."""
    if key_file is not None:
        return key_file
    environ = os.environ if env is None else env
    creds = environ.get("CREDENTIALS_DIRECTORY")
    if not creds:
        raise KeyRefused("no operation-log key: set paths.key_file or run under systemd with "
                         f"LoadCredential={CREDENTIAL_NAME}:...")
    return Path(creds) / CREDENTIAL_NAME


def load_key(key_file: Path | None, env: Mapping[str, str] | None = None,
             owner_uid: int | None = None) -> OplogKey:
    """Read and check the key file; every refusal is a KeyRefused with a clear message.

    The file must be a regular file owned by the daemon user and not readable, writable or
    executable by group or others (0600/0400): the key protects personal data (Art. 36).
    """
    path = key_path(key_file, env)
    data = read_secret_file(path, "operation-log key file", owner_uid)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise KeyRefused(f"{path}: key must be hex text") from None
    return parse_key_text(text, str(path))


def pending_path(path: Path) -> Path:
    """Where a new key waits while the database is being rekeyed."""
    return path.with_name(path.name + ".new")


def write_key_file(path: Path, key: OplogKey) -> None:
    """Write a key file 0600 durably (temp file, fsync, rename, fsync directory)."""
    write_private_file(path, (key.raw.hex() + "\n").encode("ascii"))


def stage_new_key(key_file: Path | None, env: Mapping[str, str] | None = None) -> tuple[Path, OplogKey]:
    """Create and durably store the next key next to the current one (step 1 of a rekey).

    Keys from systemd credentials are read-only: rotate those by replacing the credential.
    """
    if key_file is None:
        raise RekeyRefused("the key comes from systemd credentials ($CREDENTIALS_DIRECTORY), "
                           "which the daemon cannot rewrite; set paths.key_file to rotate it here")
    new = OplogKey.generate()
    write_key_file(pending_path(key_file), new)
    return key_file, new


def commit_new_key(key_file: Path) -> None:
    """Make the staged key the current one (step 3 of a rekey, after PRAGMA rekey succeeded)."""
    os.replace(pending_path(key_file), key_file)
    fsync_dir(key_file.parent)


def discard_new_key(key_file: Path) -> None:
    """Drop a staged key after a failed rekey."""
    with contextlib.suppress(FileNotFoundError):
        pending_path(key_file).unlink()
