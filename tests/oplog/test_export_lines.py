"""Export lines are built per row without the generic privacy walk over every key: they must
be exactly what export_record of the whole record gives (masked and unmasked)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockerd.oplog import audit
from lockerd.privacy import export_record

OP_ROWS = [
    (7, "2026-05-01T10:00:00.000Z", "parcel.deposited", "courier:sf/7", 4, "p1",
     '{"size":"M"}', "a" * 64, "b" * 64),
    (8, "2026-05-01T10:00:01.000Z", "door.opened", "tech:uid:1501", None, None,
     '{"reason":"call 13812345678","nested":{"waybill":"SF1234567889","list":[{"phone":'
     '"13912345678"}]}}', "b" * 64, "c" * 64),
    (9, "2026-05-01T10:00:02.000Z", "oplog.exported", "uid:0", None, None, "{}", "c" * 64,
     "d" * 64),
]
PARCEL_ROWS = [
    ("p1", "delivery", "sf", 4, "in_locker", "M", "SF1234567889", "13812345678", "ref-42",
     "books", None, '{"fragile":true,"pin_hash":"x"}', "2026-05-01T10:00:00.000Z",
     "2026-05-01T10:00:00.000Z", None, None),
    ("p2", "dropoff", "yto", None, "purged", None, None, None, None, None, None, "{}",
     "2026-05-01T10:00:00.000Z", "2026-05-01T10:00:00.000Z", "2026-05-02T10:00:00.000Z",
     "2026-06-02T10:00:00.000Z"),
]


def _generic(names: tuple[str, ...], row: tuple[Any, ...], masked: bool, nested: str) -> str:
    rec = dict(zip(names, ("x", *row), strict=True))
    rec["type"] = "operation" if nested == "body" else "parcel"
    rec[nested] = json.loads(rec[nested])
    return json.dumps(export_record(rec, masked=masked), ensure_ascii=False)


@pytest.mark.parametrize("masked", [True, False])
def test_lines_equal_export_record_of_the_whole_record(masked: bool) -> None:
    for row in OP_ROWS:
        assert audit._op_line(row, masked) == _generic(audit.OP_NAMES, row, masked, "body")
    for prow in PARCEL_ROWS:
        line = audit._parcel_line(prow, masked)
        assert line == _generic(audit.PARCEL_NAMES, prow, masked, "flags")
    masked_line = audit._parcel_line(PARCEL_ROWS[0], True)
    assert "13812345678" not in masked_line
    assert "138****5678" in masked_line
