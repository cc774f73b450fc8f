"""The regulator report (Art. 28): figures from a real demo day's log, the JSON Schema, the
Ed25519 signature of the JSON and CSV forms, tamper detection, bounded reads, intake time."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from lockerd.config import Config, load_config
from lockerd.oplog import OpLog, OplogKey, identity, regreport, report_sign
from tests.fixtures.paths import EXAMPLE_CONFIG

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
RELEASE = ROOT / "tests" / "fixtures" / "releases" / "unreleased"
DAY_FROM = datetime(2026, 12, 1, tzinfo=UTC)
DAY_TO = datetime(2026, 12, 3, tzinfo=UTC)


@pytest.fixture
def cfg() -> Config:
    return load_config(EXAMPLE_CONFIG)


@pytest.fixture
def device(tmp_path: Path) -> identity.DeviceIdentity:
    return identity.load_or_create(tmp_path / "identity")[0]


@pytest.fixture
async def day_log(tmp_path: Path) -> AsyncIterator[OpLog]:
    """A copy of the log the demo day left (tests/fixtures/releases/unreleased)."""
    shutil.copy(RELEASE / "oplog.db", tmp_path / "oplog.db")
    key = OplogKey(bytes.fromhex((RELEASE / "oplog.key.hex").read_text().strip()))
    store = await OpLog.open(tmp_path / "oplog.db", key)
    try:
        yield store
    finally:
        await store.close()


async def _report(store: OpLog, cfg: Config, device: identity.DeviceIdentity,
                  since: datetime = DAY_FROM, until: datetime = DAY_TO) -> dict[str, Any]:
    return await regreport.build(store, cfg.cabinet, cfg.compartments, since=since, until=until,
                                 produced_at=datetime(2026, 12, 3, 1, tzinfo=UTC),
                                 device=report_sign.device_fields(device))


async def test_a_real_day_by_carrier_and_day(day_log: OpLog, cfg: Config,
                                              device: identity.DeviceIdentity) -> None:
    rep = await _report(day_log, cfg, device)
    sf = next(d for d in rep["days"] if d["carrier"] == "sf")
    assert sf["day"] == "2026-12-02"
    assert (sf["deliveries"], sf["pickups"], sf["dropoffs"], sf["rejections"], sf["overdue"],
            sf["returns"]) == (5, 1, 1, 1, 1, 2)
    assert sf["refusals"] == [{"reason": "damaged", "count": 1}]
    assert sf["rejections_by_reason"] == [{"reason": "mismatch", "count": 1}]
    assert sf["denied"] == [{"error": "courier_revoked", "count": 1},
                            {"error": "intake_closed", "count": 1}]
    nobody = next(d for d in rep["days"] if d["carrier"] == "-")
    assert nobody["denied"] == [{"error": "locked_out", "count": 1},
                                {"error": "wrong_code", "count": 5}]
    [mon] = rep["monitoring"]
    assert mon["camera_incidents"] == [{"kind": "camera_obstructed", "count": 1}]
    assert mon["door_incidents"] == [{"kind": "door_jammed", "count": 1}]
    assert mon["intake_closed_s"] == [{"reason": "camera_obstructed", "seconds": 3}]
    assert rep["cabinet"]["registration_number"] == "BJ-HD-2026-0001"
    assert rep["compartments"] == {"total": 12, "by_size": [
        {"size": "L", "count": 3}, {"size": "M", "count": 4}, {"size": "S", "count": 5}]}
    assert rep["totals"]["deliveries"] == 5
    assert rep["totals"]["operations"] == 50


async def test_the_signed_report_validates_against_its_schema(
        day_log: OpLog, cfg: Config, device: identity.DeviceIdentity) -> None:
    doc = report_sign.signed_json(await _report(day_log, cfg, device), device)
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    broken = json.loads(json.dumps(doc))
    broken["report"]["days"][0]["deliveries"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


async def test_json_signature_verifies_and_one_changed_number_breaks_it(
        day_log: OpLog, cfg: Config, device: identity.DeviceIdentity) -> None:
    doc = report_sign.signed_json(await _report(day_log, cfg, device), device)
    text = json.dumps(doc, indent=2, sort_keys=True)
    ok = report_sign.verify(text.encode())
    assert ok.ok, ok
    assert ok.key_fingerprint == device.fingerprint
    # re-indented, the same figures still verify: the signature covers the canonical form
    assert report_sign.verify(json.dumps(doc).encode()).ok
    tampered = json.loads(text)
    tampered["report"]["totals"]["deliveries"] = 4
    bad = report_sign.verify(json.dumps(tampered).encode())
    assert not bad.ok
    assert bad.reason == "signature does not match the content"
    # the enrolled fingerprint (or its key id) must be the signer's when it is given
    assert report_sign.verify(text.encode(), device.fingerprint).ok
    assert report_sign.verify(text.encode(), device.key_id).ok
    assert not report_sign.verify(text.encode(), "0" * 64).ok


async def test_csv_signature_verifies_and_one_changed_digit_breaks_it(
        day_log: OpLog, cfg: Config, device: identity.DeviceIdentity) -> None:
    text = report_sign.signed_csv(await _report(day_log, cfg, device), device)
    assert text.startswith("section,day,carrier,metric,key,value\n")
    assert "days,2026-12-02,sf,deliveries,,5\n" in text
    assert "monitoring,2026-12-02,,door_incidents,door_jammed,1\n" in text
    assert report_sign.verify(text.encode()).ok
    bad = report_sign.verify(text.replace("sf,deliveries,,5", "sf,deliveries,,6").encode())
    assert not bad.ok
    assert not report_sign.verify(text.rsplit("#signature", 1)[0].encode()).ok


async def test_reads_run_in_bounded_batches(day_log: OpLog, cfg: Config,
                                            device: identity.DeviceIdentity,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    whole = await _report(day_log, cfg, device)
    reads: list[int] = []
    real_read = day_log.read

    async def counting(fn: Any) -> Any:
        rows = await real_read(fn)
        if isinstance(rows, list):  # a batch (the first read finds where the range starts)
            reads.append(len(rows))
        return rows

    monkeypatch.setattr(regreport, "BATCH", 7)
    monkeypatch.setattr(day_log, "read", counting)
    assert await _report(day_log, cfg, device) == whole
    assert max(reads) <= 7
    assert len(reads) == 50 // 7 + 1


class Clock:
    """The log's clock, set by the test."""

    def __init__(self) -> None:
        self.now = DAY_FROM

    def __call__(self) -> datetime:
        return self.now


async def _alert(store: OpLog, clock: Clock, at: datetime, kind: str, active: bool,
                 board: int | None = None) -> None:
    clock.now = at
    await store.append("alert.raised" if active else "alert.cleared", actor="lockerd",
                       body={"active": active, "kind": kind, "board": board, "severity": "warning",
                             "alert_id": "a" * 32, "detail": "test"})


async def test_intake_and_board_time_is_split_at_local_midnight(
        tmp_path: Path, key: OplogKey, cfg: Config, device: identity.DeviceIdentity) -> None:
    clock = Clock()
    store = await OpLog.open(tmp_path / "clocked.db", key, clock=clock)
    try:
        await _intervals(store, clock, cfg, device)
    finally:
        await store.close()


async def _intervals(store: OpLog, clock: Clock, cfg: Config, device: identity.DeviceIdentity) -> None:
    # Asia/Shanghai midnight of 2026-12-03 is 16:00Z on 2026-12-02
    midnight = datetime(2026, 12, 2, 16, tzinfo=UTC)
    await _alert(store, clock, midnight - timedelta(minutes=30), "camera_down", True)
    await _alert(store, clock, midnight + timedelta(minutes=45), "camera_down", False)
    await _alert(store, clock, midnight + timedelta(hours=1), "board_offline", True, board=2)
    await _alert(store, clock, midnight + timedelta(hours=2), "door_forced", True)
    rep = await _report(store, cfg, device, since=midnight - timedelta(hours=2),
                        until=midnight + timedelta(hours=3))
    days = {m["day"]: m for m in rep["monitoring"]}
    assert days["2026-12-02"]["intake_closed_s"] == [{"reason": "camera_down", "seconds": 1800}]
    assert days["2026-12-03"]["intake_closed_s"] == [{"reason": "camera_down", "seconds": 2700}]
    assert days["2026-12-02"]["camera_incidents"] == [{"kind": "camera_down", "count": 1}]
    # the board is still offline when the period ends: counted up to its end
    assert days["2026-12-03"]["board_outages"] == 1
    assert days["2026-12-03"]["board_offline_s"] == 7200
    assert days["2026-12-03"]["door_incidents"] == [{"kind": "door_forced", "count": 1}]
    jsonschema.Draft202012Validator(SCHEMA).validate(report_sign.signed_json(rep, device))


async def test_a_period_is_bounded(store: OpLog, cfg: Config, device: identity.DeviceIdentity) -> None:
    with pytest.raises(regreport.ReportRangeError):
        await _report(store, cfg, device, since=DAY_FROM,
                      until=DAY_FROM + timedelta(days=regreport.MAX_DAYS + 1))
    with pytest.raises(regreport.ReportRangeError):
        await _report(store, cfg, device, since=DAY_TO, until=DAY_FROM)
