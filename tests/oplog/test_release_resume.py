"""A cabinet resumes on the log an earlier release left: a full daemon on the simulator and a real mosquitto.

Each folder of tests/fixtures/releases is copied into a fresh state directory, with its key in
the key file and the demo config's compartments (the fixtures come from the demo day). The
daemon must migrate and verify the log, send the outbox rows the release left unsent, in order
and unchanged, restore the parcels still in the cabinet, and, where the fixture's generator
recorded them (codes.json, scripts/make_release_fixture), hand the parcels out with their codes
and let the courier in with its PIN.

0.1.0 predates the generator: its pickup codes are kept only as keyed digests (and none of its
deliveries is still in the cabinet), so its resume shows the chain, the outbox and the live
drop-off, not a pickup. Its demo day ran with a broker, so every row was sent; the test marks
the last rows unsent again, as a 0.1.0 cabinet stopped during a broker outage would have left
them (sent_at is bookkeeping outside the chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.oplog import sqlcipher
from lockerd.oplog.schema import SCHEMA_VERSION
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import Cabinet
from tests.fixtures.paths import REPO

RELEASES = REPO / "tests" / "fixtures" / "releases"
ALL = sorted(p.name for p in RELEASES.iterdir() if p.is_dir())
# 0.1.0's rows 15-21 (two cabinet alerts, five sf events seq 9-13) stand for an outage.
UNSEND_FROM_ID = {"0.1.0": 15}


def _fixture_key(release: str) -> bytes:
    return bytes.fromhex((RELEASES / release / "oplog.key.hex").read_text().strip())


def _read_fixture(db: Path, key: bytes, unsend_from: int | None) -> dict[str, Any]:
    """The schema, unsent outbox rows and live parcels of a fixture copy (before the daemon)."""
    conn = sqlcipher.connect(db, key)
    try:
        if unsend_from is not None:
            conn.execute("UPDATE outbox SET sent_at = NULL WHERE id >= ?", (unsend_from,))
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        unsent = [(int(r[0]), str(r[1]), json.loads(r[2])) for r in conn.execute(
            "SELECT id, topic, payload FROM outbox WHERE sent_at IS NULL ORDER BY id")]
        parcels = {}
        for (value,) in conn.execute("SELECT value FROM live_state WHERE entity = 'parcel'"):
            p = json.loads(value)
            parcels[p["id"]] = p
        blocked = sorted(json.loads(v)["id"] for (v,) in conn.execute(
            "SELECT value FROM live_state WHERE entity = 'compartment'")
            if json.loads(v)["state"] == "blocked")
        carriers = sorted({str(r[0]) for r in conn.execute("SELECT DISTINCT stream FROM outbox")
                           if r[0] != "_cabinet"})
    finally:
        conn.close()
    return {"schema": schema, "unsent": unsent, "parcels": parcels, "blocked": blocked,
            "carriers": carriers}


Resumed = tuple[Cabinet, dict[str, Any], dict[str, CarrierClient]]


@contextlib.asynccontextmanager
async def resume(release: str, workdir: Path, broker: LocalBroker) -> AsyncIterator[Resumed]:
    """The release's files under a daemon, with each carrier subscribed before it starts."""
    cab = Cabinet(workdir, mqtt={"enabled": True, "host": "127.0.0.1", "port": broker.port,
                                 "tls": False, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                                 "idle_poll_ms": 100, "state_min_interval_s": 0.1})
    key = _fixture_key(release)
    key_file = cab.cfg.paths.key_file
    assert key_file is not None
    key_file.write_text(key.hex() + "\n")
    os.chmod(key_file, 0o600)
    state = cab.cfg.paths.state_dir
    state.mkdir(mode=0o700)
    for name in ("oplog.db", "evidence.db"):
        shutil.copy(RELEASES / release / name, state / name)
    before = _read_fixture(state / "oplog.db", key, UNSEND_FROM_ID.get(release))
    async with contextlib.AsyncExitStack() as stack:
        clients: dict[str, CarrierClient] = {}
        for i, carrier in enumerate(before["carriers"]):
            clients[carrier] = await stack.enter_async_context(CarrierClient(
                "127.0.0.1", broker.port, cab.cfg.cabinet.id, carrier,
                prefix=cab.cfg.mqtt.prefix, watch_cabinet=i == 0))
        await cab.start()
        stack.push_async_callback(cab.stop)
        yield cab, before, clients


async def _drained(cab: Cabinet, last_id: int, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        pending = await cab.store.outbox_pending(limit=1)
        if not pending or pending[0].id > last_id:
            return
        assert time.monotonic() < deadline, f"outbox row {pending[0].id} never went out"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("release", ALL)
async def test_release_resumes(release: str, tmp_path: Path, broker: LocalBroker) -> None:
    async with resume(release, tmp_path, broker) as (cab, before, clients):
        await _check_resumed(cab, before, clients)


async def _check_resumed(cab: Cabinet, before: dict[str, Any],
                         clients: dict[str, CarrierClient]) -> None:
    await cab.verify()
    started = await cab.ops("daemon.started")
    assert started[-1].body["schema"] == SCHEMA_VERSION
    assert started[-1].body["migrated_from"] == (
        None if before["schema"] == SCHEMA_VERSION else before["schema"])

    # The rows the release left unsent go out unchanged, in commit order per topic, once each.
    assert before["unsent"], "a resume fixture must leave rows unsent"
    await _drained(cab, before["unsent"][-1][0])
    await asyncio.sleep(0.3)  # the last PUBACKed messages reach the subscribers
    expected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for _id, topic, payload in before["unsent"]:
        expected[topic].append(payload)
    # Schema 5 gave each stream an epoch: rows written before carry their stream's epoch now,
    # otherwise unchanged (docs/mqtt.md: consumers key on (epoch, seq)).
    received: dict[str, list[dict[str, Any]]] = defaultdict(list)
    epochs: dict[str, set[str]] = defaultdict(set)
    for client in clients.values():
        for msg in client.all:
            bare = {k: v for k, v in msg.payload.items() if k != "epoch"}
            if bare in [{k: v for k, v in e.items() if k != "epoch"}
                          for e in expected.get(msg.topic, [])]:
                received[msg.topic].append(bare)
                if "seq" in msg.payload:
                    epochs[msg.topic].add(msg.payload["epoch"])
    assert received == {t: [{k: v for k, v in e.items() if k != "epoch"} for e in rows]
                        for t, rows in expected.items()}
    assert all(len(found) == 1 and re.fullmatch(r"[0-9a-f]{32}", next(iter(found)))
               for found in epochs.values()), epochs

    # The parcels still in the cabinet are restored (an in_locker one may turn overdue: the
    # fixture's storage deadline passes in real time); blocked compartments stay blocked.
    state = cab.d.parcels.cabinet.state
    for pid, old in before["parcels"].items():
        now = state.parcels[pid]
        assert now.compartment == old["compartment"]
        assert now.status.value == old["status"] or (old["status"], now.status.value) == (
            "in_locker", "overdue")
        assert state.compartments[old["compartment"]].parcel_id == pid
    assert set(before["blocked"]) <= set(cab.d.parcels.blocked())


async def test_parcels_left_by_the_current_code_are_picked_up_with_their_codes(
        tmp_path: Path, broker: LocalBroker) -> None:
    """The fixture generated from this checkout (scripts/make_release_fixture unreleased)."""
    codes = json.loads((RELEASES / "unreleased" / "codes.json").read_text())
    assert codes["parcels"], "the generator left no parcels"
    async with resume("unreleased", tmp_path, broker) as (cab, _before, _clients):
        courier = codes["couriers"][0]
        login = await cab.call("courier.login", {"panel": "kiosk-1", "carrier": courier["carrier"],
                                                 "courier_id": courier["courier_id"],
                                                 "pin": courier["pin"]})
        assert login["courier_id"] == courier["courier_id"]
        for parcel in codes["parcels"]:
            got = await cab.call("panel.pickup", {"panel": "kiosk-1", "code": parcel["code"]})
            assert got["status"] == "pickup.confirm", got
            assert got["parcel_id"] == parcel["parcel_id"]
        picked = {op.parcel_id: op.compartment for op in await cab.ops("pickup.confirm")}
        assert {p["parcel_id"]: p["compartment"] for p in codes["parcels"]}.items() \
            <= picked.items()
        await cab.verify()
