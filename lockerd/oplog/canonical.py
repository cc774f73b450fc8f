"""Canonical encoding and hashing of operation rows for the tamper-evident chain."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, no NaN (same text for the same value)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def row_hash(seq: int, ts: str, kind: str, actor: str,  # noqa: PLR0917 - one per column
             compartment: int | None, parcel_id: str | None, body_json: str,
             prev_hash: str) -> str:
    """SHA-256 over the canonical encoding of every column of an operation row but its hash."""
    encoded = dumps([CHAIN_VERSION, seq, ts, kind, actor, compartment, parcel_id, body_json,
                     prev_hash])
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def format_ts(when: datetime) -> str:
    """RFC 3339 UTC with microseconds; the fixed width keeps text order equal to time order."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Inverse of format_ts (accepts any RFC 3339 form Python understands)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
