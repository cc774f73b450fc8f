"""Anchors: the cabinet's signed statement of its chain head, and the proof that a log extends them.

An anchor says "cabinet C's log of epoch E had operation S with hash H at time T", signed with
the device identity (lockerd.oplog.identity). The cabinet hands anchors out (retained on
`lockers/{cab}/chain`, inside each `parcel.*` event), so carriers and the regulator hold
statements the cabinet cannot take back: a log that was cut at its tail, rewritten and rehashed,
or replaced no longer extends them. The signed bytes are defined in docs/oplog.md; `signed_bytes`
is the one implementation.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lockerd.domain.ids import CABINET_ID_PATTERN
from lockerd.oplog.identity import DeviceIdentity, key_id, verify_signature

ANCHOR_DOMAIN = "lockerd-anchor/1"
RESET_KIND = "oplog.reset"
EPOCH_PATTERN = r"^[0-9a-f]{32}$"
HASH_PATTERN = r"^[0-9a-f]{64}$"
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_FIELDS = {"cabinet": CABINET_ID_PATTERN, "epoch": EPOCH_PATTERN, "hash": HASH_PATTERN,
           "ts": TIME_PATTERN, "key_id": KEY_ID_PATTERN}
_ALLOWED = {"v", "seq", "sig", *_FIELDS}


class AnchorError(ValueError):
    """An anchor that is not well formed (before any signature is checked)."""


@dataclass(frozen=True, slots=True)
class Anchor:
    """One signed chain head; `sig` is the 64-byte Ed25519 signature over `signed_bytes()`."""

    cabinet: str
    epoch: str
    seq: int
    hash: str
    ts: str
    key_id: str
    sig: bytes = field(repr=False)

    def signed_bytes(self) -> bytes:
        """What is signed: the domain line and the five fields, each on its own line, ASCII.

        `lockerd-anchor/1\\n{cabinet}\\n{epoch}\\n{seq}\\n{hash}\\n{ts}`, seq in decimal without
        leading zeros, no trailing newline. Every field is restricted to ASCII without newlines
        (checked in `from_json`), so the encoding is unambiguous in any language.
        """
        return signed_bytes(self.cabinet, self.epoch, self.seq, self.hash, self.ts)

    def to_json(self) -> dict[str, Any]:
        """The wire form (MQTT `chain`, event envelopes, anchor files, the anchor state)."""
        return {"v": 1, "cabinet": self.cabinet, "epoch": self.epoch, "seq": self.seq,
                "hash": self.hash, "ts": self.ts, "key_id": self.key_id,
                "sig": base64.b64encode(self.sig).decode("ascii")}

    def verifies(self, public_raw: bytes) -> bool:
        """The signature is valid for this public key (and names it)."""
        return self.key_id == key_id(public_raw) and \
            verify_signature(public_raw, self.sig, self.signed_bytes())


def signed_bytes(cabinet: str, epoch: str, seq: int, digest: str, ts: str) -> bytes:
    """The canonical bytes of an anchor (see Anchor.signed_bytes)."""
    return "\n".join((ANCHOR_DOMAIN, cabinet, epoch, str(int(seq)), digest, ts)).encode("ascii")


def from_json(value: Mapping[str, Any]) -> Anchor:
    """Parse and check the wire form; AnchorError names the first problem."""
    if not isinstance(value, Mapping):
        raise AnchorError("an anchor is a JSON object")
    extra = set(value) - _ALLOWED
    if extra:
        raise AnchorError(f"unknown anchor fields: {', '.join(sorted(extra))}")
    if value.get("v") != 1:
        raise AnchorError("anchor version must be 1")
    for name, pattern in _FIELDS.items():
        text = value.get(name)
        if not isinstance(text, str) or not re.match(pattern, text):
            raise AnchorError(f"anchor field {name!r} is missing or malformed")
    seq = value.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise AnchorError("anchor field 'seq' must be a positive integer")
    try:
        sig = base64.b64decode(str(value.get("sig", "")), validate=True)
    except (binascii.Error, ValueError):
        raise AnchorError("anchor field 'sig' is not base64") from None
    if len(sig) != 64:
        raise AnchorError("anchor field 'sig' must hold 64 bytes")
    return Anchor(value["cabinet"], value["epoch"], seq, value["hash"], value["ts"],
                  value["key_id"], sig)


def make(identity: DeviceIdentity, cabinet: str, epoch: str, seq: int, digest: str,  # noqa: PLR0917 - the five signed fields
         ts: str) -> Anchor:
    """Sign a chain head."""
    return Anchor(cabinet, epoch, seq, digest, ts, identity.key_id,
                  identity.sign(signed_bytes(cabinet, epoch, seq, digest, ts)))


def epoch_of(first_hash: str) -> str:
    """A log's epoch: the first 32 hex digits of its first operation's hash.

    Needs no storage and cannot be chosen: a new or replaced log has a different first
    operation (its time at least), so a different epoch.
    """
    return first_hash[:32]


def chain_epoch(conn: Any) -> str | None:
    """The epoch of the log on `conn`, or None while it is empty."""
    row = conn.execute("SELECT hash FROM operations WHERE seq = 1").fetchone()
    return None if row is None else epoch_of(str(row[0]))


@dataclass(frozen=True, slots=True)
class ResetMark:
    """An `oplog.reset` record: the old log's head it replaced, and where it sits now."""

    at_seq: int
    previous_seq: int
    previous_hash: str
    reason: str


def read_resets(conn: Any) -> dict[str, ResetMark]:
    """Every recorded reset, by the epoch of the log it replaced."""
    marks: dict[str, ResetMark] = {}
    rows = conn.execute("SELECT seq, body FROM operations WHERE kind = ?", (RESET_KIND,))
    for seq, body in rows:
        data = json.loads(body)
        if data.get("previous_epoch"):
            marks[str(data["previous_epoch"])] = ResetMark(
                int(seq), int(data.get("previous_seq") or 0), str(data.get("previous_hash")),
                str(data.get("reason", "")))
    return marks


def problem(conn: Any, anchor: Anchor, public_raw: bytes, cabinet: str,
            resets: Mapping[str, ResetMark] | None = None) -> str | None:
    """Why the log on `conn` does not extend `anchor` (None when it does)."""
    if anchor.cabinet != cabinet:
        return f"anchor is for cabinet {anchor.cabinet}, this is {cabinet}"
    if not anchor.verifies(public_raw):
        return (f"anchor seq {anchor.seq}: signature does not verify with the cabinet's public "
                f"key {key_id(public_raw)} (forged or altered anchor, or another key)")
    local = chain_epoch(conn)
    if local is None:
        return (f"the local log is EMPTY but the cabinet anchored operation {anchor.seq} of "
                f"epoch {anchor.epoch} at {anchor.ts}: the database was replaced or wiped")
    if anchor.epoch != local:
        mark = (resets or {}).get(anchor.epoch)
        if mark is None:
            return (f"anchor seq {anchor.seq} belongs to log epoch {anchor.epoch}, the local log "
                    f"is epoch {local} and records no reset of it: the database was REPLACED "
                    "(or rewritten from its first operation)")
        if anchor.seq > mark.previous_seq or (anchor.seq == mark.previous_seq
                                              and anchor.hash != mark.previous_hash):
            return (f"anchor seq {anchor.seq} of epoch {anchor.epoch} lies beyond the head "
                    f"{mark.previous_seq} the reset at operation {mark.at_seq} declared: the "
                    "reset hid operations")
        return None
    row = conn.execute("SELECT hash FROM operations WHERE seq = ?", (anchor.seq,)).fetchone()
    if row is None:
        head = conn.execute("SELECT max(seq) FROM operations").fetchone()[0] or 0
        return (f"operation {anchor.seq} was anchored at {anchor.ts} but the local log ends at "
                f"{head}: the TAIL WAS CUT ({anchor.seq - head} or more operations removed)")
    if str(row[0]) != anchor.hash:
        return (f"operation {anchor.seq} has hash {str(row[0])[:16]}… locally but "
                f"{anchor.hash[:16]}… was anchored at {anchor.ts}: the chain was REWRITTEN and "
                "rehashed after it was anchored")
    return None


@dataclass(slots=True)
class AnchorReport:
    """What `verify-log --anchors` found: anchors checked, covered by a reset, problems."""

    checked: int = 0
    by_reset: int = 0
    highest: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No anchor contradicts the log."""
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """For --json output."""
        return {"ok": self.ok, "anchors": self.checked, "covered_by_reset": self.by_reset,
                "highest_seq": self.highest, "problems": self.problems}


def verify_all(conn: Any, anchors: Iterable[Anchor], public_raw: bytes,
               cabinet: str) -> AnchorReport:
    """Check every anchor against the log on `conn` (see `problem`)."""
    report = AnchorReport()
    resets = read_resets(conn)
    local = chain_epoch(conn)
    for anchor in anchors:
        report.checked += 1
        found = problem(conn, anchor, public_raw, cabinet, resets)
        if found is not None:
            report.problems.append(found)
        elif anchor.epoch != local:
            report.by_reset += 1
        else:
            report.highest = max(report.highest, anchor.seq)
    return report


__all__ = ["Anchor", "AnchorError", "AnchorReport", "ResetMark", "chain_epoch", "epoch_of",
           "from_json", "make", "problem", "read_resets", "signed_bytes",
           "verify_all"]
