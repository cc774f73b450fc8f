"""Canonical encoding and hashing of operation rows for the tamper-evident chain."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring as _string  # what dumps uses for str
from typing import Any

# format_ts/parse_ts are re-exported: oplog modules spell row times through here, defined in domain.
from lockerd.domain.timefmt import format_ts, parse_ts

__all__ = ["CHAIN_VERSION", "GENESIS_HASH", "dumps", "format_ts", "parse_ts", "row_hash"]

GENESIS_HASH = "0" * 64
CHAIN_VERSION = 1


#: json.dumps with these options builds a new encoder per call; verify hashes every row, so the
#: one encoder is made once (the same options, the same text).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def dumps(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 kept, no NaN (same text for the same value)."""
    return _CANONICAL.encode(value)


def row_hash(seq: int, ts: str, kind: str, actor: str,  # noqa: PLR0917 - one per column
             compartment: int | None, parcel_id: str | None, body_json: str,
             prev_hash: str) -> str:
    """SHA-256 over the canonical encoding of every column of an operation row but its hash.

    The encoding is `dumps` of the list of columns. Rows of the expected types (every row the
    writer inserts) are encoded directly with json's own string and integer encoders, which is
    the same text without building a list and an encoder per row (verify hashes a million rows);
    anything else (a row whose column types were tampered with) goes through `dumps`, so its
    hash is what it always was.
    """
    if (type(seq) is int and type(ts) is str and type(kind) is str and type(actor) is str
            and (compartment is None or type(compartment) is int)
            and (parcel_id is None or type(parcel_id) is str)
            and type(body_json) is str and type(prev_hash) is str):
        encoded = (f"[{CHAIN_VERSION},{seq!r},{_string(ts)},{_string(kind)},{_string(actor)},"
                   f"{'null' if compartment is None else repr(compartment)},"
                   f"{'null' if parcel_id is None else _string(parcel_id)},"
                   f"{_string(body_json)},{_string(prev_hash)}]")
    else:
        encoded = dumps([CHAIN_VERSION, seq, ts, kind, actor, compartment, parcel_id, body_json,
                         prev_hash])
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()
