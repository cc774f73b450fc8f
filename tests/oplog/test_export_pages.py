"""log.export in pages: complete and in order, recorded before the first page, cursors bound to
their caller and grant, open exports capped and expiring, pages bounded in bytes (real SQLCipher
log; the paged contract through the real unix socket too)."""

from __future__ import annotations

import asyncio
import json
import tomllib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.api.client import AsyncApiClient
from lockerd.api.server import ALL_ROLES, ApiServer, Caller, Role
from lockerd.config import parse_config
from lockerd.oplog import audit
from lockerd.oplog.canonical import format_ts, parse_ts
from lockerd.oplog.component import OplogComponent
from lockerd.oplog.records import insert_parcel
from tests.fixtures.paths import EXAMPLE_CONFIG

ROOT = Caller(pid=1, uid=0, gid=0, roles=ALL_ROLES)
AUDITOR = Caller(pid=2, uid=1500, gid=1500, roles=frozenset({Role.AUDIT}))
OTHER_AUDITOR = Caller(pid=3, uid=1600, gid=1600, roles=frozenset({Role.AUDIT}))
PAGE_KIB = 1


@pytest.fixture
async def running(tmp_path: Path, key_file: Path) -> AsyncIterator[tuple[OplogComponent, ApiServer]]:
    """The log with 1 KiB pages, two open exports at most, each dropped after 1 s idle."""
    data = tomllib.loads(EXAMPLE_CONFIG.read_text())
    data["paths"] = {"state_dir": str(tmp_path / "state"), "socket": str(tmp_path / "api.sock"),
                     "key_file": str(key_file)}
    data["oplog"].update(export_page_kib=PAGE_KIB, max_open_exports=2, export_idle_s=1)
    cfg = parse_config(data, EXAMPLE_CONFIG)
    api = ApiServer(cfg.api, cfg.paths.socket)
    comp = OplogComponent(cfg.oplog, cfg.paths, api, cabinet=cfg.cabinet,
                          compartments=cfg.compartments)
    await comp.start()
    try:
        yield comp, api
    finally:
        await comp.stop()


async def _call(api: ApiServer, caller: Caller, **params: Any) -> dict[str, Any]:
    line = json.dumps({"id": 1, "method": "log.export", "params": params}).encode()
    return await api.dispatch(line, caller)


async def _seed(comp: OplogComponent, n: int = 40) -> dict[str, str]:
    """n deposits with a parcel row each (personal fields to mask); the range that holds them
    and none of the export records appended later."""
    await asyncio.sleep(0.01)  # the start records fall before `start`
    start = comp.store.now()
    for i in range(n):
        def parcel(conn: Any, i: int = i) -> None:
            insert_parcel(conn, parcel_id=f"p{i:03d}", kind="delivery", carrier="sf",
                          status="in_locker", now=comp.store.now(), compartment=1 + i % 12,
                          waybill=f"SF{1234567000 + i}", recipient_phone=f"1381234{5000 + i}")

        await comp.store.append("parcel.deposited", actor="courier:sf/7", body={"size": "M"},
                                compartment=1 + i % 12, parcel_id=f"p{i:03d}", mutate=parcel)
    end = comp.store.now() + timedelta(milliseconds=1)
    await asyncio.sleep(0.01)  # later records (the exports') fall after `end`
    return {"from": format_ts(start), "to": format_ts(end)}


async def _drain(api: ApiServer, caller: Caller, first: dict[str, Any]
                 ) -> tuple[list[str], list[dict[str, Any]]]:
    assert first["ok"], first
    pages = [first["result"]]
    while pages[-1]["cursor"]:
        reply = await _call(api, caller, cursor=pages[-1]["cursor"])
        assert reply["ok"], reply
        pages.append(reply["result"])
    return [line for page in pages for line in page["lines"]], pages


async def test_pages_are_complete_in_order_and_bounded(
        running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    rng = await _seed(comp)
    lines, pages = await _drain(api, AUDITOR, await _call(api, AUDITOR, **rng))
    assert len(pages) > 5  # 80 rows of a few hundred bytes in 1 KiB pages
    for page in pages:
        size = sum(len(line.encode()) + 1 for line in page["lines"])
        assert size <= PAGE_KIB * 1024 or len(page["lines"]) == 1, size
    assert pages[0]["rows"] == 80 == len(lines) == pages[-1]["sent"]
    records = [json.loads(line) for line in lines]
    seqs = [r["seq"] for r in records if r["type"] == "operation"]
    assert seqs == sorted(seqs)
    assert len(seqs) == len(set(seqs)) == 40
    assert [r["id"] for r in records if r["type"] == "parcel"] == [f"p{i:03d}" for i in range(40)]
    assert records[-1]["type"] == "parcel"  # operations first, then parcels
    text = "\n".join(lines)
    assert "13812345000" not in text
    assert "138****5000" in text
    # the same content as the whole range read at once
    whole = await audit.export(comp.store, since=parse_ts(rng["from"]),
                               until=parse_ts(rng["to"]), uid=1500)
    assert whole.lines == lines
    # each export is recorded, with its counts and the head it is bounded by
    record = (await comp.store.operations(after_seq=pages[0]["record_seq"] - 1, limit=1))[0]
    assert record.kind == "oplog.exported"
    assert record.body["operations"] == 40
    assert record.body["parcels"] == 40
    assert record.body["head_seq"] == record.seq - 1
    # a finished export's cursor is gone
    gone = await _call(api, AUDITOR, cursor=pages[-2]["cursor"])
    assert gone["error"]["code"] == "cursor_unknown"


async def test_a_lost_page_can_be_asked_for_again_but_no_older_one(
        running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    rng = await _seed(comp)
    first = (await _call(api, AUDITOR, **rng))["result"]
    second = (await _call(api, AUDITOR, cursor=first["cursor"]))["result"]
    # the reply of `second` was lost: the same cursor serves the same page again
    again = (await _call(api, AUDITOR, cursor=first["cursor"]))["result"]
    assert again == second
    third = (await _call(api, AUDITOR, cursor=second["cursor"]))["result"]
    assert third["lines"] != second["lines"]
    stale = await _call(api, AUDITOR, cursor=first["cursor"])  # two pages back
    assert stale["error"]["code"] == "cursor_unknown"
    # the export goes on, complete and without repeats
    rest, _ = await _drain(api, AUDITOR, {"ok": True, "result": third})
    lines = first["lines"] + second["lines"] + rest
    assert len(lines) == len(set(lines)) == 80


async def test_appends_during_an_export_do_not_enter_it(
        running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    rng = await _seed(comp, 20)
    wide = {"from": rng["from"], "to": "2200-01-01T00:00:00Z"}
    first = await _call(api, AUDITOR, **wide)
    assert first["result"]["cursor"]
    for _ in range(5):  # appended after the export began: past its head
        await comp.store.append("door.opened", actor="tech:uid:1501", body={"reason": "x"},
                                compartment=1)
    lines, _ = await _drain(api, AUDITOR, first)
    kinds = [json.loads(line).get("kind") for line in lines]
    assert "door.opened" not in kinds
    assert "oplog.exported" not in kinds  # its own record is after the head it is bounded by
    assert len(lines) == first["result"]["rows"] == 40


async def test_the_record_is_committed_before_the_first_page(
        running: tuple[OplogComponent, ApiServer], monkeypatch: pytest.MonkeyPatch) -> None:
    comp, api = running
    rng = await _seed(comp, 5)
    seen: list[str] = []
    real_page = audit._page

    def page(conn: Any, *args: Any) -> audit.ExportPage:
        # the page's own read snapshot already holds the committed record
        seen.append(conn.execute("SELECT kind FROM operations ORDER BY seq DESC LIMIT 1"
                                 ).fetchone()[0])
        return real_page(conn, *args)

    monkeypatch.setattr(audit, "_page", page)
    reply = await _call(api, AUDITOR, **rng)
    assert reply["ok"], reply
    assert seen[0] == "oplog.exported"

    async def no_record(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(comp.store, "append", no_record)
    seen.clear()
    failed = await _call(api, AUDITOR, **rng)
    assert not failed["ok"]
    assert seen == []  # an export that could not be recorded reads nothing
    assert "result" not in failed


async def test_cursors_are_bound_to_their_caller_and_grant(
        running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    rng = await _seed(comp)
    masked = (await _call(api, AUDITOR, **rng))["result"]
    for other in (OTHER_AUDITOR, ROOT):
        refused = await _call(api, other, cursor=masked["cursor"])
        assert refused["error"]["code"] == "cursor_not_yours", refused
    # a cursor cannot widen its grant
    widened = await _call(api, AUDITOR, cursor=masked["cursor"], unmasked=True, reason="xyz")
    assert widened["error"]["code"] == "bad_params"
    unknown = await _call(api, AUDITOR, cursor="A" * 22 + ".1")
    assert unknown["error"]["code"] == "cursor_unknown"
    # root's unmasked export stays unmasked on every page, and only root can read it
    first = await _call(api, ROOT, unmasked=True, reason="police request 42", **rng)
    assert (await _call(api, AUDITOR, cursor=first["result"]["cursor"])
            )["error"]["code"] == "cursor_not_yours"
    lines, pages = await _drain(api, ROOT, first)
    assert all(not page["masked"] for page in pages)
    parcels = [json.loads(line) for line in lines if '"type": "parcel"' in line]
    assert [p["recipient_phone"] for p in parcels] == [f"1381234{5000 + i}" for i in range(40)]
    # the auditor's masked export goes on where it was, still masked
    rest, _ = await _drain(api, AUDITOR, {"ok": True, "result": masked})
    assert "13812345039" not in "\n".join(rest)
    assert "138****5039" in "\n".join(rest)


async def test_open_exports_are_capped_and_expire(
        running: tuple[OplogComponent, ApiServer]) -> None:
    comp, api = running
    rng = await _seed(comp)
    a = (await _call(api, AUDITOR, **rng))["result"]
    b = (await _call(api, OTHER_AUDITOR, **rng))["result"]
    assert a["cursor"]
    assert b["cursor"]
    recorded = len(await comp.store.operations(kinds=["oplog.exported"]))
    third = await _call(api, ROOT, **rng)
    assert third["error"]["code"] == "too_many_exports"
    # refused before anything was recorded
    assert len(await comp.store.operations(kinds=["oplog.exported"])) == recorded
    await _drain(api, AUDITOR, {"ok": True, "result": a})  # finishing one frees its slot
    c = (await _call(api, ROOT, **rng))["result"]
    assert c["cursor"]
    # idle past export_idle_s (1 s): dropped, its cursor refused, its slot free again
    await asyncio.sleep(1.3)
    expired = await _call(api, OTHER_AUDITOR, cursor=b["cursor"])
    assert expired["error"]["code"] == "cursor_unknown"
    assert "expired" in expired["error"]["message"]
    assert (await _call(api, AUDITOR, **rng))["ok"]


async def test_paged_export_through_the_socket(running: tuple[OplogComponent, ApiServer],
                                              tmp_path: Path) -> None:
    comp, api = running
    rng = await _seed(comp)
    await api.start()
    try:
        async with AsyncApiClient(tmp_path / "api.sock") as client:
            result = await client.call("log.export", rng)
            lines = list(result["lines"])
            while result["cursor"]:
                result = await client.call("log.export", {"cursor": result["cursor"]})
                lines.extend(result["lines"])
    finally:
        await api.stop()
    assert len(lines) == 80
    assert lines == (await audit.export(comp.store, since=parse_ts(rng["from"]),
                                        until=parse_ts(rng["to"]), uid=0)).lines
