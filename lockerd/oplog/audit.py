"""Audited reads of the log: masked view and recorded export (the regulator's report: regreport)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lockerd.oplog.canonical import format_ts
from lockerd.oplog.chain import OP_COLUMNS
from lockerd.oplog.errors import OplogError
from lockerd.oplog.records import PARCEL_COLUMN_NAMES, PARCEL_COLUMNS
from lockerd.oplog.store import OpLog
from lockerd.privacy import export_record, mask_record, redact_text


class ExportTooLarge(OplogError):
    """The requested range holds more rows than one export may return."""


async def view(store: OpLog, *, since: datetime | None = None, until: datetime | None = None,
               kinds: Sequence[str] | None = None, compartment: int | None = None,
               after_seq: int = 0, limit: int = 200, before_seq: int | None = None,
               newest_first: bool = False) -> list[dict[str, Any]]:
    """Operations for people, masked (bodies hold no personal data; masking is a second wall)."""
    ops = await store.operations(since=since, until=until, kinds=kinds, compartment=compartment,
                                 after_seq=after_seq, limit=limit, before_seq=before_seq,
                                 newest_first=newest_first)
    return [mask_record(op.to_json()) for op in ops]


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The exported lines and the chain record of the export."""

    lines: list[str]
    rows: int
    masked: bool
    record_seq: int


def _parcel_dict(row: Sequence[Any]) -> dict[str, Any]:
    return {name: json.loads(value) if name == "flags" else value
            for name, value in zip(PARCEL_COLUMN_NAMES, row, strict=True)}


async def export(store: OpLog, *, since: datetime, until: datetime, uid: int, masked: bool = True,
                 reason: str | None = None, max_rows: int = 50000) -> ExportResult:
    """JSON lines of operations and parcels in [since, until), recorded before they leave.

    Unmasked exports need a reason; who may ask for one (root) is the API layer's decision.
    Fields the privacy registry never exports (secrets and their hashes) are left out of both.
    The record (who by uid, when, range, rows, masked, reason with any personal value in it
    redacted, as for door reasons) is committed before the data
    is returned, so an export that happened is never missing from the chain (Art. 37).
    """
    if not masked and not (reason and reason.strip()):
        raise OplogError("an unmasked export needs a reason")
    lo, hi = format_ts(since), format_ts(until)

    def collect(conn: Any) -> tuple[list[Any], list[Any]]:
        n_ops = conn.execute("SELECT count(*) FROM operations WHERE ts >= ? AND ts < ?",
                             (lo, hi)).fetchone()[0]
        n_parcels = conn.execute("SELECT count(*) FROM parcels WHERE created_at >= ? AND "
                                 "created_at < ?", (lo, hi)).fetchone()[0]
        if n_ops + n_parcels > max_rows:
            raise ExportTooLarge(f"{n_ops + n_parcels} rows in range, at most {max_rows} per "
                                 "export; narrow the range")
        ops = conn.execute(f"SELECT {OP_COLUMNS} FROM operations WHERE ts >= ? AND ts < ? "  # noqa: S608
                           "ORDER BY seq", (lo, hi)).fetchall()
        parcels = conn.execute(f"SELECT {PARCEL_COLUMNS} FROM parcels WHERE created_at >= ? "  # noqa: S608
                               "AND created_at < ? ORDER BY created_at, id", (lo, hi)).fetchall()
        return ops, parcels

    ops, parcels = await store.read(collect)
    lines: list[str] = []
    for seq, ts, kind, actor, compartment, parcel_id, body, prev_hash, digest in ops:
        rec: dict[str, Any] = {"type": "operation", "seq": seq, "ts": ts, "kind": kind,
                               "actor": actor, "compartment": compartment,
                               "parcel_id": parcel_id, "body": json.loads(body),
                               "prev_hash": prev_hash, "hash": digest}
        lines.append(json.dumps(export_record(rec, masked=masked), ensure_ascii=False))
    for row in parcels:
        rec = {"type": "parcel", **_parcel_dict(row)}
        lines.append(json.dumps(export_record(rec, masked=masked), ensure_ascii=False))
    record = await store.append(
        "oplog.exported", actor=f"uid:{uid}",
        body={"uid": uid, "from": lo, "to": hi, "rows": len(lines), "operations": len(ops),
              "parcels": len(parcels), "masked": masked,
              "reason": None if reason is None else redact_text(reason)})
    return ExportResult(lines, len(lines), masked, record.seq)
