"""HMAC-SHA256 signatures of carrier commands: canonical input, sign, verify, key files."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MIN_KEY_BYTES = 16


def canonical_command(command: Mapping[str, Any]) -> bytes:
    """The command without `sig`, as canonical JSON (sorted keys, no spaces, UTF-8)."""
    unsigned = {k: v for k, v in command.items() if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def signing_input(topic: str, command: Mapping[str, Any]) -> bytes:
    """`topic` LF canonical command: binds the signature to this cabinet and this carrier."""
    return topic.encode("utf-8") + b"\n" + canonical_command(command)


def sign(key: bytes, topic: str, command: Mapping[str, Any]) -> str:
    """Lower-case hex HMAC-SHA256 of the signing input."""
    return hmac.new(key, signing_input(topic, command), hashlib.sha256).hexdigest()


def verify(key: bytes, topic: str, command: Mapping[str, Any], sig: str) -> bool:
    """Constant-time check of `sig` against the expected signature."""
    return hmac.compare_digest(sign(key, topic, command), sig)


def command_digest(command: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical command: tells a redelivery from a reused id."""
    return hashlib.sha256(canonical_command(command)).hexdigest()


def load_hmac_key(path: Path) -> bytes:
    """Read a carrier key file: hex text (e.g. `openssl rand -hex 32`) or raw bytes.

    Blocking file I/O: call it from a thread.
    """
    # A FIFO or device would block start-up in read_bytes(): only a regular file is read.
    if not path.is_file():
        raise ValueError(f"{path}: HMAC key is not a regular file")
    raw = path.read_bytes()
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: HMAC key shorter than {MIN_KEY_BYTES} bytes")
    return key
