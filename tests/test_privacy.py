"""The personal-field registry: every key lockerd writes is classified, and every output obeys it.

The day test drives the demo's real flows on the simulator (couriers, deliveries, wrong codes,
refusal, revocation, drop-off, overdue, a door left open, maintenance, pre-announcement and
recall, an export masked and unmasked, a retention purge), then reads every chain body, outbox
payload, domain-table row and export line and fails on a key lockerd.privacy does not know.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lockerd.config import Config
from lockerd.demo import day as demo
from lockerd.demo import flows as demo_flows
from lockerd.demo.day import DemoContext, Timeline, demo_day
from lockerd.domain import Decision, Record
from lockerd.oplog import OpLog, PersonalDataInChain, audit, retention
from lockerd.parcels.store import chain_body
from lockerd.privacy import (
    NON_PERSONAL,
    PERSONAL,
    chain_allowed,
    export_record,
    known,
    mask_record,
    personal,
    redact_text,
)
from tests.fixtures.cabinet import FAST, speed_up_sim_doors


def keys_of(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """(key, path) of every mapping key at any depth of a JSON-like value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k), f"{where}.{k}"
            yield from keys_of(v, f"{where}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from keys_of(v, f"{where}[{i}]")


def unknown_keys(sources: dict[str, list[Any]]) -> dict[str, str]:
    """Key -> one place it was seen, for every key the registry does not classify."""
    found: dict[str, str] = {}
    for name, values in sources.items():
        for i, value in enumerate(values):
            for key, path in keys_of(value, f"{name}[{i}]"):
                if not known(key):
                    found.setdefault(key, path)
    return found


# ------------------------------------------------------------------ the registry itself


def test_registry_and_allow_list_are_one_consistent_source() -> None:
    assert not set(PERSONAL) & NON_PERSONAL
    assert all(k == k.lower() for k in [*PERSONAL, *NON_PERSONAL])
    # the disagreements this registry settled
    for field in ("verification_ref", "sender_verification", "pin_hash", "pin_salt"):
        entry = personal(field)
        assert entry is not None, field
        assert not entry.in_chain, field
    assert personal("pin_hash").exported is False  # type: ignore[union-attr]
    assert personal("verification_ref").exported is True  # type: ignore[union-attr]


def test_an_unknown_key_is_reported() -> None:
    """The day test's checker is not vacuous: a key nobody classified is named with its path."""
    found = unknown_keys({"chain": [{"kind": "x", "body": {"nickname": "Zhang", "ok": True}}]})
    assert found == {"nickname": "chain[0].body.nickname"}


@pytest.mark.parametrize("field", sorted(k for k in PERSONAL if not chain_allowed(k)))
async def test_chain_guard_refuses_every_registered_field(store: OpLog, field: str) -> None:
    with pytest.raises(PersonalDataInChain, match=field):
        await store.append("x", actor="test", body={field: "v"})
    with pytest.raises(PersonalDataInChain, match=f"(?i){field}"):
        await store.append("x", actor="test", body={"changes": [{"nested": {field.upper(): 1}}]})
    assert store.head[0] == 0


def test_chain_body_filter_drops_every_registered_field() -> None:
    body = {k: "v" for k in PERSONAL} | {"panel": "kiosk-1", "flags": {"pin": "1", "fresh": True}}
    out = chain_body(Decision(Record("deliver.begin", "courier:sf/c-1", body)))
    assert not [k for k, _ in keys_of(out, "body") if not chain_allowed(k)]
    assert out["panel"] == "kiosk-1"
    assert out["flags"] == {"fresh": True}
    assert out["has_waybill"] is True


@pytest.mark.parametrize("field", sorted(PERSONAL))
def test_every_registered_field_is_masked_and_redacted(field: str) -> None:
    value = "SF1234567889-13812345678"
    masked = mask_record({"outer": [{field: value}]})["outer"][0][field]
    assert value not in masked
    assert "*" in masked
    for text in (f"{field}={value}", f"{field}: {value}", json.dumps({field: value})):
        assert value not in redact_text(text), text


def test_export_leaves_out_never_exported_fields_and_masks_the_rest() -> None:
    rec = {"type": "parcel", "waybill": "SF1234567889", "pin_hash": "pbkdf2$x",
           "body": {"code": "123456", "size": "S"}}
    for masked in (True, False):
        out = export_record(rec, masked=masked)
        assert "pin_hash" not in out
        assert "code" not in out["body"]
        assert out["body"]["size"] == "S"
    assert export_record(rec, masked=True)["waybill"] == "SF12******89"
    assert export_record(rec, masked=False)["waybill"] == "SF1234567889"


# ------------------------------------------------------------------ a real day


def _fast_demo_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's own config with the service tests' faster camera start (validated again)."""
    original = demo.demo_config

    def fast(workdir: Path, **kwargs: Any) -> Config:
        cfg = original(workdir, **kwargs)
        camera = type(cfg.camera).model_validate({**cfg.camera.model_dump(), **FAST["camera"]})
        return cfg.model_copy(update={"camera": camera})

    monkeypatch.setattr(demo, "demo_config", fast)


async def _fast_doors(ctx: DemoContext) -> None:
    speed_up_sim_doors(ctx.daemon)


async def _expect_and_recall(ctx: DemoContext) -> None:
    """A carrier pre-announces two parcels, delivers one and recalls the other."""
    for waybill in ("SF7000000001", "SF7000000002"):
        reply = await demo_flows.carrier_command(ctx.daemon, "sf", "parcel.expect", {
            "waybill": waybill, "size": "S", "consent": True})
        assert reply["ok"], reply
    res = await ctx.call("panel.deliver", {"panel": "kiosk-1", "carrier": "sf",
                                           "courier_id": "c-101", "pin": demo_flows.PIN_A,
                                           "parcel": {"waybill": "SF7000000001", "size": "S"}})
    assert "parcel_id" in res, res
    reply = await demo_flows.carrier_command(ctx.daemon, "sf", "parcel.recall",
                                             {"waybill": "SF7000000002"})
    assert reply["ok"], reply


async def _export(ctx: DemoContext) -> None:
    store = ctx.daemon.oplog.store
    lo, hi = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)
    lines: list[Any] = []
    for masked in (True, False):
        result = await audit.export(store, since=lo, until=hi, uid=0, masked=masked,
                                    reason=None if masked else "registry test")
        lines.extend(json.loads(line) for line in result.lines)
    ctx.extras["export"] = lines
    ctx.extras["view"] = await audit.view(store, limit=10_000)


async def _purge(ctx: DemoContext) -> None:
    """Retention far in the future: every class destroys something and records it."""
    store = ctx.daemon.oplog.store
    done = await retention.purge(store, ctx.daemon.cfg.oplog,
                                 now=store.now() + timedelta(days=400))
    assert all(done[c] for c in ("parcels", "couriers", "command_ids")), done


async def _collect(ctx: DemoContext) -> None:
    store = ctx.daemon.oplog.store

    def read(conn: Any) -> dict[str, list[Any]]:
        chain = [json.loads(r[0]) for r in conn.execute("SELECT body FROM operations")]
        outbox = [json.loads(bytes(r[0])) for r in conn.execute("SELECT payload FROM outbox")]
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        rows = [{r[1]: None for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables]
        live = [json.loads(r[0]) for r in conn.execute("SELECT value FROM live_state")]
        replies = [json.loads(r[0]) for r in conn.execute("SELECT reply FROM commands")]
        return {"chain": chain, "outbox": outbox, "table": rows, "live_state": live,
                "command_reply": replies}

    for name, values in (await store.read(read)).items():
        ctx.extras.setdefault("seen", {}).setdefault(name, []).extend(values)


async def test_every_key_of_a_day_is_in_the_registry(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    _fast_demo_config(monkeypatch)
    seen: dict[str, Any] = {}

    async def keep(ctx: DemoContext) -> None:
        seen.update(ctx.extras)

    scenes = [_fast_doors, *demo.SCENES, _expect_and_recall, _export, _collect, _purge, _collect,
              keep]
    await demo_day(tmp_path, timeline=Timeline(), scenes=scenes, own_broker=False)
    sources: dict[str, list[Any]] = {**seen["seen"], "export": seen["export"],
                                     "view": seen["view"]}
    assert unknown_keys(sources) == {}

    def keys(name: str) -> set[str]:
        return {k for value in sources[name] for k, _ in keys_of(value, name)}

    # the day really carried personal fields: the checks below are about something
    assert {"waybill", "pickup_code", "verification_ref", "declared_contents"} <= keys("outbox")
    assert {"waybill", "code", "pin_hash", "verification_ref"} <= keys("live_state")
    assert {"waybill", "sender_verification", "pin_hash"} <= keys("table")
    assert {"waybill", "declared_contents"} <= keys("export")
    assert {v["type"] for v in sources["export"]} == {"operation", "parcel"}
    # nothing the registry keeps out of the chain is in it
    assert {k for k in keys("chain") if not chain_allowed(k)} == set()
    # never-exported fields are in no export line, masked or not
    never = {k for k, f in PERSONAL.items() if not f.exported}
    assert keys("export") & never == set()
    # no personal value of the day in a log message
    logs = "\n".join(r.getMessage() for r in caplog.records)
    for value in ("SF7000000001", "SF7000000002", demo_flows.PIN_A, "RN-7f3a9c21"):
        assert value not in logs
