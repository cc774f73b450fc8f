"""Canonical encoding and hashing of operation rows for the tamper-evident chain."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# format_ts/parse_ts are re-exported: oplog modules spell row times through here, defined in domain.
from lockerd.domain.timefmt import format_ts, parse_ts

__all__ = ["CHAIN_VERSION", "GENESIS_HASH", "dumps", "format_ts", "parse_ts", "row_hash"]

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
