"""Release identity: each start records `daemon.started {version, schema}`; status and MQTT name it."""

from __future__ import annotations

import asyncio
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lockerd.app.daemon import Daemon
from lockerd.config import Config
from lockerd.oplog import OplogKey
from lockerd.oplog.component import OplogComponent
from lockerd.oplog.keys import write_key_file
from lockerd.oplog.schema import SCHEMA_VERSION
from lockerd.oplog.store import OpLog
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.oplog import example_config
from tests.fixtures.paths import REPO
from tests.fixtures.sync import CAB, SyncFactory

RELEASED = version("lockerd")
FIXTURE_010 = REPO / "tests" / "fixtures" / "releases" / "0.1.0"


async def _start_stop(cfg: Config) -> list[Any]:
    """One start and clean stop of the oplog component; the daemon.started records so far."""
    comp = OplogComponent(cfg.oplog, cfg.paths, cabinet=cfg.cabinet,
                          compartments=cfg.compartments)
    await comp.start()
    try:
        assert comp.status()["schema"] == SCHEMA_VERSION
        return await comp.store.operations(kinds=["daemon.started"])
    finally:
        await comp.stop()


async def test_every_start_records_release_and_schema(tmp_path: Path, key_file: Path) -> None:
    cfg = example_config(tmp_path, key_file)
    first = await _start_stop(cfg)
    second = await _start_stop(cfg)
    assert [op.body for op in second] == [
        {"version": RELEASED, "schema": SCHEMA_VERSION, "migrated_from": 0},
        {"version": RELEASED, "schema": SCHEMA_VERSION, "migrated_from": None},
    ]
    assert first[0].seq == second[0].seq
    assert second[0].actor == "lockerd"


async def test_a_migration_is_named_in_the_chain(tmp_path: Path) -> None:
    """A 0.1.0 log (schema 3) opened by this release says it was migrated from 3."""
    state = tmp_path / "state"
    state.mkdir()
    shutil.copy(FIXTURE_010 / "oplog.db", state / "oplog.db")
    key_file = tmp_path / "oplog.key"
    write_key_file(key_file, OplogKey(bytes.fromhex((FIXTURE_010 / "oplog.key.hex").read_text()
                                                    .strip())))
    started = await _start_stop(example_config(tmp_path, key_file))
    assert started[-1].body == {"version": RELEASED, "schema": SCHEMA_VERSION, "migrated_from": 3}


async def test_daemon_status_names_the_installed_release(tmp_path: Path, key_file: Path) -> None:
    status = Daemon(example_config(tmp_path, key_file)).status()
    assert status["version"] == RELEASED


async def test_mqtt_birth_message_names_the_installed_release(make_sync: SyncFactory,
                                                              broker: LocalBroker,
                                                              oplog: OpLog) -> None:
    await make_sync()
    async with CarrierClient("127.0.0.1", broker.port, CAB, "sf") as sf:
        for _ in range(200):
            births = [m.payload for m in sf.all if m.topic == sf.topics.status]
            if births:
                break
            await asyncio.sleep(0.05)
    assert births, "no status message"
    assert births[-1]["online"] is True
    assert births[-1]["version"] == RELEASED
