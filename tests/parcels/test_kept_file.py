"""The side file of door-cycle ends kept on a full disk (lockerd/parcels/kept_file.py).

The daemon-level run (stop while full, start after) is tests/parcels/test_disk_full.py; these
pin the file's care (reserved size, 0600, no symlink, unreadable content) and the exactly-once
rule of the replay: an end is decided again only while its operation is still open.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockerd.domain import ErrorCode
from lockerd.domain.errors import Refused
from lockerd.parcels.kept_file import SLOT, KeptFile, redecide
from tests.parcels.test_late_records import SF_PANEL, full_log, rig  # noqa: F401 - fixture
from tests.parcels.test_write_ahead import Rig, deposited


def test_the_file_is_reserved_0600_and_round_trips(tmp_path: Path) -> None:
    side = KeptFile(tmp_path / "ends.json")
    assert side.open() == []
    st = (tmp_path / "ends.json").stat()
    assert (st.st_size, st.st_mode & 0o777) == (SLOT, 0o600)
    entry = {"kind": "pickup.confirm", "compartment": 3, "parcel_id": "p1",
             "since": "2025-01-01T00:00:00Z", "at": "2025-01-01T00:01:00Z"}
    assert side.write([entry] * 100)  # more than fit: the first ones are kept
    side.close()
    again = KeptFile(tmp_path / "ends.json")
    got = again.open()
    assert 10 < len(got) < 100
    assert got[0] == entry
    assert (tmp_path / "ends.json").stat().st_size == SLOT  # rewritten in place, never grown
    again.close()


def test_a_symlink_or_garbage_is_not_trusted(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("secret")
    os.symlink(target, tmp_path / "ends.json")
    side = KeptFile(tmp_path / "ends.json")
    assert side.open() == []
    assert not side.write([])
    assert target.read_text() == "secret"
    (tmp_path / "junk.json").write_bytes(b'{"v": 1, "ends": [tr' + b" " * 100)
    junk = KeptFile(tmp_path / "junk.json")
    assert junk.open() == []
    junk.close()


async def test_a_kept_end_is_decided_again_only_while_its_operation_is_open(
        rig: Rig, tmp_path: Path) -> None:  # noqa: F811 - the fixture
    side = KeptFile(tmp_path / "ends.json")
    side.open()
    rig.service.late.file = side
    cid, code = await deposited(rig)
    log = full_log(rig)
    orig = rig.doors.wait_closed

    async def closing(c: int, t: float) -> bool:
        log.full = True
        return await orig(c, t)
    setattr(rig.doors, "wait_closed", closing)  # noqa: B010 - a door closing on a full disk
    with pytest.raises(Refused) as info:
        await rig.service.pickup(SF_PANEL, code)
    assert info.value.code is ErrorCode.DISK_FULL
    side.close()
    kept = KeptFile(tmp_path / "ends.json").open()
    assert [(k["kind"], k["compartment"]) for k in kept] == [("pickup.confirm", cid)]
    again = redecide(rig.cabinet, kept[0])
    assert again is not None
    assert again.record.kind == "pickup.confirm"
    log.full = False
    async with rig.service._lock:
        await rig.service.late.flush()
    assert redecide(rig.cabinet, kept[0]) is None  # recorded: not a second time
    assert redecide(rig.cabinet, {**kept[0], "since": "2020-01-01T00:00:00Z"}) is None
    assert redecide(rig.cabinet, {"kind": "pickup.confirm"}) is None
    await rig.service.late.stop()
