"""Fixtures for sync tests: a real mosquitto on loopback, a real SQLCipher log, the component."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lockerd.config import Config
from lockerd.events import EventBus
from lockerd.oplog import OpLog, OplogKey
from lockerd.sync import CommandContext, CommandError, CommandRegistry, SyncComponent, event_message
from lockerd.sync.broker import LocalBroker, mosquitto_binary
from lockerd.sync.payloads import CourierGrantBody, CourierRevokeBody, ParcelExpectBody, ParcelRecallBody

CAB = "CAB-T1"

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto not installed")


def make_config(port: int, tmp: Path, *, signed: bool = False, enabled: bool = True,
                **mqtt: Any) -> Config:
    carriers: list[dict[str, Any]] = [{"id": "sf", "name": "SF Express"},
                                      {"id": "yto", "name": "YTO Express"}]
    if signed:
        key_file = tmp / "sf.key"
        key_file.write_text("aa" * 32)
        carriers[0]["hmac_key_file"] = str(key_file)
    return Config.model_validate({
        "cabinet": {"id": CAB, "name": "Test Locker", "address": "1 Test Road",
                    "registration_number": "R-1"},
        "hardware": {"boards": [{"address": 1, "channels": 8}]},
        "compartments": [{"id": i, "size": s, "board": 1, "channel": i - 1}
                         for i, s in ((1, "S"), (2, "S"), (3, "M"), (4, "L"))],
        "carriers": carriers,
        "mqtt": {"enabled": enabled, "host": "127.0.0.1", "port": port, "tls": False,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "idle_poll_ms": 100,
                 "state_min_interval_s": 0.1, **mqtt},
    })


SF_KEY = bytes.fromhex("aa" * 32)


def install_handlers(registry: CommandRegistry, comp_topics: Any) -> None:
    """Simple flow handlers that append real operations (and carrier events) to the real log."""

    async def grant(ctx: CommandContext, body: CourierGrantBody) -> dict[str, Any]:
        await ctx.commit("courier.granted", body={"courier_id": body.courier_id},
                         result={"courier_id": body.courier_id},
                         outbox=[event_message(comp_topics, ctx.carrier, "courier.granted",
                                               {"courier_id": body.courier_id})])
        return {}

    async def revoke(ctx: CommandContext, body: CourierRevokeBody) -> dict[str, Any]:
        await ctx.commit("courier.revoked", body={"courier_id": body.courier_id},
                         result={"courier_id": body.courier_id},
                         outbox=[event_message(comp_topics, ctx.carrier, "courier.revoked",
                                               {"courier_id": body.courier_id})])
        return {}

    async def expect(ctx: CommandContext, body: ParcelExpectBody) -> dict[str, Any]:
        if not body.consent:
            raise CommandError("refused", "no consent to locker delivery (Art. 22)")
        pid = f"p-{ctx.cmd_id}"
        await ctx.commit("parcel.expected", body={"size": body.size}, parcel_id=pid,
                         result={"parcel_id": pid})
        return {}

    async def recall(ctx: CommandContext, body: ParcelRecallBody) -> dict[str, Any]:
        raise CommandError("not_found", "no such parcel")

    registry.register("courier.grant", grant)
    registry.register("courier.revoke", revoke)
    registry.register("parcel.expect", expect)
    registry.register("parcel.recall", recall)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    b = LocalBroker(tmp_path / "broker", persistence=True)
    b.workdir.mkdir()
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


@pytest.fixture
def oplog_key() -> OplogKey:
    return OplogKey.generate()


@pytest.fixture
async def oplog(tmp_path: Path, oplog_key: OplogKey) -> AsyncIterator[OpLog]:
    log = await OpLog.open(tmp_path / "oplog.db", oplog_key)
    try:
        yield log
    finally:
        await log.close()


SyncFactory = Callable[..., Awaitable[SyncComponent]]


@pytest.fixture
async def make_sync(tmp_path: Path, broker: LocalBroker,
                    oplog: OpLog) -> AsyncIterator[SyncFactory]:
    started: list[SyncComponent] = []

    async def factory(*, log: OpLog | None = None, signed: bool = False,
                      handlers: bool = True, **mqtt: Any) -> SyncComponent:
        cfg = make_config(broker.port, tmp_path, signed=signed, **mqtt)
        registry = CommandRegistry()
        comp = SyncComponent(cfg, log or oplog, EventBus(), registry=registry)
        if handlers:
            install_handlers(registry, comp.topics)
        await comp.start()
        started.append(comp)
        return comp

    yield factory
    for comp in started:
        await comp.stop()
