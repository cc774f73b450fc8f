"""OplogComponent and the log.* API: roles, masking, audited export, report, rekey, refusals."""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.api.server import ALL_ROLES, ApiServer, Caller, Role
from lockerd.config import Config, parse_config
from lockerd.oplog import KeyRefused, OplogKey, WrongKey, report_sign
from lockerd.oplog.canonical import format_ts
from lockerd.oplog.component import OplogComponent
from lockerd.oplog.keys import EXAMPLE_KEY_HEX, pending_path, write_key_file
from lockerd.oplog.records import insert_parcel, update_parcel

EXAMPLE = Path(__file__).resolve().parents[2] / "lockerd" / "config" / "example.toml"
ROOT = Caller(pid=1, uid=0, gid=0, roles=ALL_ROLES)
AUDITOR = Caller(pid=2, uid=1500, gid=1500, roles=frozenset({Role.AUDIT}))
TECH = Caller(pid=3, uid=1501, gid=1501, roles=frozenset({Role.TECH}))
PANEL = Caller(pid=4, uid=1502, gid=1502, roles=frozenset({Role.PANEL}))


def _text(path: Path) -> str:
    return path.read_text()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _config(tmp_path: Path, key_file: Path | None) -> Config:
    data = tomllib.loads(EXAMPLE.read_text())
    data["paths"]["state_dir"] = str(tmp_path / "state")
    data["paths"]["socket"] = str(tmp_path / "api.sock")
    if key_file is not None:
        data["paths"]["key_file"] = str(key_file)
    return parse_config(data, EXAMPLE)


def _component(cfg: Config, api: ApiServer | None = None, **kwargs: Any) -> OplogComponent:
    return OplogComponent(cfg.oplog, cfg.paths, api, cabinet=cfg.cabinet,
                          compartments=cfg.compartments, **kwargs)


@pytest.fixture
async def running(tmp_path: Path, key_file: Path) -> AsyncIterator[tuple[OplogComponent, ApiServer]]:
    cfg = _config(tmp_path, key_file)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = _component(cfg, api)
    await comp.start()
    try:
        yield comp, api
    finally:
        await comp.stop()


async def _call(api: ApiServer, caller: Caller, method: str, **params: Any) -> dict[str, Any]:
    line = json.dumps({"id": 1, "method": method, "params": params}).encode()
    return await api.dispatch(line, caller)


async def _seed(comp: OplogComponent) -> None:
    now = comp.store.now()

    def parcel(conn: Any) -> None:
        insert_parcel(conn, parcel_id="p1", kind="delivery", carrier="sf", status="in_locker",
                      now=now, compartment=4, waybill="SF1234567889",
                      recipient_phone="13812345678")
        insert_parcel(conn, parcel_id="d1", kind="dropoff", carrier="yto", status="received",
                      now=now, compartment=5, declared_contents="books")

    await comp.store.append("parcel.deposited", actor="courier:sf/7", body={"size": "M"},
                            compartment=4, parcel_id="p1", mutate=parcel)
    await comp.store.append("door.opened", actor="tech:uid:1501", body={"reason": "clean"},
                            compartment=5)


async def test_start_records_opening_and_status(running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    assert {"log.view", "log.verify", "log.export", "log.report", "log.rekey"} <= set(api.methods)
    status = comp.status()
    assert status["open"]
    assert status["writer_alive"]
    assert status["head_seq"] == 2
    assert len(status["key"]) == 8
    ops = await comp.store.operations()
    assert [op.kind for op in ops] == ["oplog.opened", "daemon.started"]


async def test_view_filters_and_roles(running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    await _seed(comp)
    reply = await _call(api, TECH, "log.view", compartment=4)
    assert reply["ok"], reply
    assert [o["kind"] for o in reply["result"]["operations"]] == ["parcel.deposited"]
    reply = await _call(api, AUDITOR, "log.view", kind=["door.opened", "oplog.opened"])
    assert [o["kind"] for o in reply["result"]["operations"]] == ["oplog.opened", "door.opened"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    reply = await _call(api, AUDITOR, "log.view", **{"from": future})
    assert reply["result"]["operations"] == []
    assert (await _call(api, PANEL, "log.view"))["error"]["code"] == "forbidden"
    assert (await _call(api, PANEL, "log.verify"))["error"]["code"] == "forbidden"
    assert (await _call(api, TECH, "log.export", **{"from": "2020-01-01T00:00:00Z",
                                                    "to": "2030-01-01T00:00:00Z"})
            )["error"]["code"] == "forbidden"
    verify = await _call(api, TECH, "log.verify")
    assert verify["result"]["ok"]
    assert verify["result"]["checked"] == 4


async def test_export_masked_and_recorded(running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    await _seed(comp)
    rng = {"from": "2020-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    reply = await _call(api, AUDITOR, "log.export", **rng)
    assert reply["ok"], reply
    result = reply["result"]
    text = "\n".join(result["lines"])
    assert "13812345678" not in text
    assert "SF1234567889" not in text
    assert "books" not in text
    assert "138****5678" in text
    assert "SF12******89" in text
    assert result["masked"]
    # oplog.opened, daemon.started, two parcel rows and their operation, door.opened
    assert result["rows"] == len(result["lines"]) == 6
    record = (await comp.store.operations(after_seq=result["record_seq"] - 1))[0]
    assert record.kind == "oplog.exported"
    assert record.actor == "uid:1500"
    assert record.body["uid"] == 1500
    assert record.body["masked"] is True
    assert record.body["rows"] == 6
    assert record.body["from"].startswith("2020-01-01")

    refused = await _call(api, AUDITOR, "log.export", unmasked=True, reason="court order", **rng)
    assert refused["error"]["code"] == "forbidden"
    no_reason = await _call(api, ROOT, "log.export", unmasked=True, **rng)
    assert no_reason["error"]["code"] == "reason_required"
    head = comp.store.head[0]
    unmasked = await _call(api, ROOT, "log.export", unmasked=True, reason="police request 42",
                           **rng)
    assert unmasked["ok"]
    assert "13812345678" in "\n".join(unmasked["result"]["lines"])
    record = (await comp.store.operations(after_seq=head))[0]
    assert record.body["masked"] is False
    assert record.body["reason"] == "police request 42"
    assert record.actor == "uid:0"
    assert (await comp.store.verify()).ok


async def test_report(running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    await _seed(comp)
    now = comp.store.now()
    period = {"from": format_ts(now - timedelta(days=1)), "to": format_ts(now + timedelta(days=1))}
    reply = await _call(api, AUDITOR, "log.report", **period)
    assert reply["ok"], reply
    doc = reply["result"]["document"]
    assert doc["report"]["totals"]["operations"] >= 1
    rep = doc["report"]
    assert rep["cabinet"]["registration_number"] == "BJ-HD-2026-0001"
    assert rep["compartments"]["total"] == 12
    assert rep["compartments"]["by_size"] == [{"size": "L", "count": 3},
                                              {"size": "M", "count": 4},
                                              {"size": "S", "count": 5}]
    assert report_sign.verify(json.dumps(doc).encode(), comp.device_key().fingerprint).ok
    # the production is in the chain: range, format, digest of what was handed out, signing key
    record = (await comp.store.operations(kinds=["report.produced"]))[-1]
    assert record.seq == reply["result"]["record_seq"]
    assert record.body["digest"] == report_sign.digest(doc)
    assert record.body["key_fingerprint"] == comp.device_key().fingerprint
    assert record.actor == f"uid:{AUDITOR.uid}"
    csv = await _call(api, AUDITOR, "log.report", **period, format="csv")
    assert report_sign.verify(csv["result"]["csv"].encode()).ok
    bad = await _call(api, AUDITOR, "log.report", **{"from": "2030-01-01T00:00:00Z",
                                                      "to": "2020-01-01T00:00:00Z"})
    assert bad["error"]["code"] == "bad_params"
    long = await _call(api, AUDITOR, "log.report", **{"from": "2020-01-01T00:00:00Z",
                                                       "to": "2021-01-01T00:00:00Z"})
    assert long["error"]["code"] == "bad_params"


async def test_rekey_root_only_and_restart(tmp_path: Path, key_file: Path) -> None:
    cfg = _config(tmp_path, key_file)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = _component(cfg, api)
    await comp.start()
    try:
        assert (await _call(api, AUDITOR, "log.rekey"))["error"]["code"] == "forbidden"
        old = _text(key_file)
        reply = await _call(api, ROOT, "log.rekey")
        assert reply["ok"], reply
        assert _text(key_file) != old
        assert not pending_path(key_file).exists()
        assert os.stat(key_file).st_mode & 0o777 == 0o600
        ops = await comp.store.operations(kinds=["oplog.rekeyed"])
        assert len(ops) == 1
        assert ops[0].actor == "uid:0"
        assert ops[0].body["new_key"] == reply["result"]["key"]
    finally:
        await comp.stop()
    comp = _component(cfg, None)
    await comp.start()
    try:
        assert (await comp.store.verify()).ok
    finally:
        await comp.stop()


async def test_interrupted_rekey_is_finished_at_start(tmp_path: Path, key_file: Path) -> None:
    """Crash after PRAGMA rekey but before the key file swap: the staged key is used."""
    cfg = _config(tmp_path, key_file)
    comp = _component(cfg)
    await comp.start()
    new = OplogKey.generate()
    write_key_file(pending_path(key_file), new)
    await comp.store.rekey(new, actor="uid:0")
    await comp.stop()
    comp = _component(cfg)
    await comp.start()
    try:
        assert (await comp.store.verify()).ok
        assert bytes.fromhex(_text(key_file).strip()) == new.raw
        assert not pending_path(key_file).exists()
    finally:
        await comp.stop()


async def test_refuses_to_start_on_example_or_wrong_key(tmp_path: Path, key_file: Path) -> None:
    cfg = _config(tmp_path, key_file)
    comp = _component(cfg)
    await comp.start()
    await comp.stop()
    write_key_file(key_file, OplogKey.generate())
    with pytest.raises(WrongKey):
        await _component(cfg).start()
    _write(key_file, EXAMPLE_KEY_HEX)
    with pytest.raises(KeyRefused, match="example"):
        await _component(cfg).start()
    creds_cfg = _config(tmp_path, None)
    with pytest.raises(KeyRefused):
        await _component(creds_cfg, env={}).start()


async def test_rekey_refused_for_credentials(tmp_path: Path, key: OplogKey) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    write_key_file(creds / "oplog.key", key)
    cfg = _config(tmp_path, None)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = _component(cfg, api, env={"CREDENTIALS_DIRECTORY": str(creds)})
    await comp.start()
    try:
        reply = await _call(api, ROOT, "log.rekey")
        assert reply["error"]["code"] == "refused"
        assert (await comp.store.verify()).ok
    finally:
        await comp.stop()


async def test_purge_now_and_run_feeds_progress(running: tuple[OplogComponent, ApiServer]) -> None:
    comp, _ = running
    now = comp.store.now()

    def closed(conn: Any) -> None:
        insert_parcel(conn, parcel_id="x", kind="delivery", carrier="sf", status="in_locker",
                      now=now - timedelta(days=400), waybill="SF9999999999")
        update_parcel(conn, "x", now=now, status="picked_up", closed_at=now - timedelta(days=400))

    await comp.store.append("old", actor="t", body={}, mutate=closed)
    done = await comp.purge_now()
    assert done["parcel_personal"] == 1
    assert done["parcels"] == 1
    assert comp.status()["last_purge"]["destroyed"]["parcels"] == 1
    comp._last_progress = 0.0
    task = asyncio.create_task(comp.run())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert comp._last_progress > 0
    assert comp.status()["next_purge"] is not None
