"""Audited reads of the log: masked view and recorded, paged export (the regulator's report:
regreport; the open exports between pages: exports)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockerd.oplog.canonical import format_ts
from lockerd.oplog.chain import OP_COLUMNS
from lockerd.oplog.errors import OplogError
from lockerd.oplog.records import PARCEL_COLUMN_NAMES, PARCEL_COLUMNS
from lockerd.oplog.store import OpLog
from lockerd.privacy import export_record, mask_record, personal, redact_text

#: Defaults of one page ([oplog] export_page_kib, and a row cap that keeps one read short).
PAGE_BYTES = 256 * 1024
PAGE_ROWS = 4000
#: Building a line is pure Python and holds the GIL: a thread that wants it (the event loop,
#: woken by a door poll or a panel call) would wait for the interpreter's switch interval
#: (5 ms) each time, several times per call. Every this many lines (~0.5 ms) the reader lets go.
YIELD_ROWS = 16


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


@dataclass(slots=True)
class ExportPlan:
    """What one export covers, fixed when it starts, and how far its pages have got.

    Operations are the rows in [lo, hi) with seq in (after_seq, last_seq]: last_seq is at most
    the head when the export started, so pages cover one consistent range however long the
    reader takes and whatever is appended meanwhile (the export's own record included).
    Parcels are keyset-paged by rowid (insertion order; the table has no index on created_at,
    so a rowid walk reads the table once over all pages instead of once per page) up to the
    largest rowid in range at the start.
    """

    lo: str
    hi: str
    masked: bool
    head_seq: int
    operations: int
    parcels: int
    after_seq: int = 0
    last_seq: int = 0
    after_rowid: int = 0
    last_rowid: int = 0
    record_seq: int = 0
    sent: int = 0
    done: bool = field(default=False)
    #: pages served so far; `mark` is where the last one started (it can be served again)
    page: int = 0
    mark: tuple[int, int, int] | None = None

    @property
    def rows(self) -> int:
        """Rows counted at the start (operations and parcels)."""
        return self.operations + self.parcels


@dataclass(frozen=True, slots=True)
class ExportPage:
    """One page of JSON lines; `done` once the plan's range is exhausted."""

    lines: list[str]
    nbytes: int
    done: bool


@dataclass(frozen=True, slots=True)
class ExportResult:
    """The exported lines and the chain record of the export (the whole range in memory: for
    tests and small ranges; the API pages with begin_export/next_page)."""

    lines: list[str]
    rows: int
    masked: bool
    record_seq: int


OP_NAMES = ("type", *OP_COLUMNS.replace(" ", "").split(","))
PARCEL_NAMES = ("type", *PARCEL_COLUMN_NAMES)
_LINE = json.JSONEncoder(ensure_ascii=False)  # json.dumps(…, ensure_ascii=False), made once


def _exported(names: Sequence[str], values: Sequence[Any], special: Sequence[int],
              masked: bool) -> dict[str, Any]:
    """export_record of the record `names` -> `values`, with the privacy registry consulted only
    for the `special` positions (keys it classifies as personal, and the nested body or flags):
    export_record treats every key on its own and leaves a plain scalar under a non-personal key
    as it is, so this is the same record (in the same key order) at a fraction of the cost."""
    done = export_record({names[i]: values[i] for i in special}, masked=masked)
    out = dict(zip(names, values, strict=True))
    for i in special:
        if names[i] in done:
            out[names[i]] = done[names[i]]
        else:
            del out[names[i]]
    return out


def _special(names: Sequence[str], nested: str) -> tuple[int, ...]:
    return tuple(i for i, n in enumerate(names) if n == nested or personal(n) is not None)


_OP_SPECIAL = _special(OP_NAMES, "body")
_PARCEL_SPECIAL = _special(PARCEL_NAMES, "flags")


def _op_line(row: Sequence[Any], masked: bool) -> str:
    values = ["operation", *row]
    values[7] = json.loads(row[6])  # the body
    return _LINE.encode(_exported(OP_NAMES, values, _OP_SPECIAL, masked))


def _parcel_line(row: Sequence[Any], masked: bool) -> str:
    values = ["parcel", *row]
    values[12] = json.loads(row[11])  # flags
    return _LINE.encode(_exported(PARCEL_NAMES, values, _PARCEL_SPECIAL, masked))


def _plan(conn: Any, lo: str, hi: str, masked: bool) -> ExportPlan:
    """Counts and bounds of [lo, hi) in one snapshot (runs in the reader)."""
    head = conn.execute("SELECT coalesce(max(seq), 0) FROM operations").fetchone()[0]
    n_ops, first, last = conn.execute(
        "SELECT count(*), min(seq), max(seq) FROM operations WHERE ts >= ? AND ts < ? "
        "AND seq <= ?", (lo, hi, head)).fetchone()
    n_parcels, first_rowid, last_rowid = conn.execute(
        "SELECT count(*), min(rowid), max(rowid) FROM parcels WHERE created_at >= ? "
        "AND created_at < ?", (lo, hi)).fetchone()
    return ExportPlan(lo=lo, hi=hi, masked=masked, head_seq=int(head), operations=int(n_ops),
                      parcels=int(n_parcels), after_seq=int(first or 1) - 1,
                      last_seq=int(last or 0), after_rowid=int(first_rowid or 1) - 1,
                      last_rowid=int(last_rowid or 0))


def _page(conn: Any, plan: ExportPlan, max_bytes: int, max_rows: int) -> ExportPage:
    """The next page of `plan` as JSON lines (runs in the reader: reading, masking and encoding
    stay off the event loop). At most `max_rows` lines and `max_bytes` of UTF-8 text (a single
    longer line goes alone, so every page moves on); advances the plan's position."""
    lines: list[str] = []
    size = 0

    def take(line: str) -> bool:
        nonlocal size
        n = len(line.encode("utf-8")) + 1  # the newline the file gets
        if lines and (size + n > max_bytes or len(lines) >= max_rows):
            return False
        lines.append(line)
        size += n
        if len(lines) % YIELD_ROWS == 0:
            time.sleep(0)  # hand the GIL to the event loop if it waits (see YIELD_ROWS)
        return True

    if plan.after_seq < plan.last_seq:
        # `+ts`: walk the primary key from the last position (the ts index would sort the
        # whole remaining range for every page).
        cur = conn.execute(f"SELECT {OP_COLUMNS} FROM operations WHERE seq > ? AND seq <= ? "  # noqa: S608
                           "AND +ts >= ? AND +ts < ? ORDER BY seq LIMIT ?",
                           (plan.after_seq, plan.last_seq, plan.lo, plan.hi, max_rows))
        full, last = _fill(cur, lambda row: _op_line(row, plan.masked), take)
        plan.after_seq = plan.after_seq if last is None else last
        if full or len(lines) >= max_rows:
            return _finish(plan, lines, size)
        plan.after_seq = plan.last_seq
    if plan.after_rowid < plan.last_rowid:
        cur = conn.execute(f"SELECT rowid, {PARCEL_COLUMNS} FROM parcels WHERE rowid > ? "  # noqa: S608
                           "AND rowid <= ? AND created_at >= ? AND created_at < ? "
                           "ORDER BY rowid LIMIT ?",
                           (plan.after_rowid, plan.last_rowid, plan.lo, plan.hi,
                            max_rows - len(lines)))
        full, last = _fill(cur, lambda row: _parcel_line(row[1:], plan.masked), take)
        plan.after_rowid = plan.after_rowid if last is None else last
        if full or len(lines) >= max_rows:
            return _finish(plan, lines, size)
        plan.after_rowid = plan.last_rowid
    plan.done = True
    return _finish(plan, lines, size)


def _fill(cur: Any, line_of: Callable[[Any], str], take: Callable[[str], bool]
          ) -> tuple[bool, int | None]:
    """Take the lines of `cur`'s rows (each row's first column is its key) until the page is
    full: (full, key of the last row taken, None when none was)."""
    last = None
    for row in cur:
        if not take(line_of(row)):
            return True, last
        last = int(row[0])
    return False, last


def _finish(plan: ExportPlan, lines: list[str], size: int) -> ExportPage:
    plan.sent += len(lines)
    return ExportPage(lines, size, plan.done)


async def begin_export(store: OpLog, *, since: datetime, until: datetime, uid: int,
                       masked: bool = True, reason: str | None = None, max_rows: int = 500000
                       ) -> ExportPlan:
    """Fix the range of an export and record it in the chain; no line has left yet.

    Unmasked exports need a reason; who may ask for one (root) is the API layer's decision.
    The record (who by uid, range, operation and parcel counts, the head the export is bounded
    by, masked, reason with any personal value in it redacted, as for door reasons) is
    committed before the first page is read, so an export that happened is never missing from
    the chain (Art. 37). `max_rows` is a sanity cap (ExportTooLarge, nothing recorded).
    """
    if not masked and not (reason and reason.strip()):
        raise OplogError("an unmasked export needs a reason")
    lo, hi = format_ts(since), format_ts(until)
    plan = await store.read(lambda conn: _plan(conn, lo, hi, masked))
    if plan.rows > max_rows:
        raise ExportTooLarge(f"{plan.rows} rows in range, at most {max_rows} per export; "
                             "narrow the range")
    record = await store.append(
        "oplog.exported", actor=f"uid:{uid}",
        body={"uid": uid, "from": lo, "to": hi, "rows": plan.rows,
              "operations": plan.operations, "parcels": plan.parcels,
              "head_seq": plan.head_seq, "masked": masked,
              "reason": None if reason is None else redact_text(reason)})
    plan.record_seq = record.seq
    return plan


async def next_page(store: OpLog, plan: ExportPlan, *, max_bytes: int = PAGE_BYTES,
                    max_rows: int = PAGE_ROWS) -> ExportPage:
    """Read, mask and encode the next page of a begun export in the read executor."""
    if plan.done:
        return ExportPage([], 0, True)
    mark = (plan.after_seq, plan.after_rowid, plan.sent)
    page = await store.read(lambda conn: _page(conn, plan, max_bytes, max_rows))
    plan.mark = mark
    plan.page += 1
    return page


def rewind(plan: ExportPlan) -> bool:
    """Go back to the start of the last page served (its reply was lost); False if none."""
    if plan.mark is None:
        return False
    plan.after_seq, plan.after_rowid, plan.sent = plan.mark
    plan.mark = None
    plan.page -= 1
    plan.done = False
    return True


async def export(store: OpLog, *, since: datetime, until: datetime, uid: int, masked: bool = True,
                 reason: str | None = None, max_rows: int = 500000) -> ExportResult:
    """Every line of [since, until) at once, recorded before it is read (see begin_export)."""
    plan = await begin_export(store, since=since, until=until, uid=uid, masked=masked,
                              reason=reason, max_rows=max_rows)
    lines: list[str] = []
    while not plan.done:
        lines.extend((await next_page(store, plan)).lines)
    return ExportResult(lines, len(lines), masked, plan.record_seq)
