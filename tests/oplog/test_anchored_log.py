"""The anchored log end to end (issue 17): a daemon on the simulator and a real mosquitto; a
carrier-side subscriber collects anchors from `lockers/{cab}/chain` and from its `parcel.*`
events into a JSON-lines file. Then, with the log key in hand, the tail is cut, a row is edited
and the chain rehashed, and the database is replaced: `lockerctl verify-log --anchors` detects
each, the daemon refuses to start on each, and only `lockerctl reset-log` lets a new log begin,
recorded as its first operation and anchored."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest

from lockerd.app.daemon import Daemon
from lockerd.cli import lockerctl
from lockerd.oplog import OpLog, anchor_state, anchors, sqlcipher
from lockerd.oplog.canonical import row_hash
from lockerd.oplog.identity import DeviceIdentity, identity_dir, load_identity
from lockerd.oplog.keys import load_key
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import PIN, Cabinet, courier, mqtt_settings, until

# the log and the evidence store (whose key lives in the log) are replaced together
DB_FILES = ("oplog.db", "oplog.db-wal", "oplog.db-shm", "evidence.db", "evidence.db-wal",
            "evidence.db-shm")


class Collector:
    """What a carrier keeps: every anchor it saw, on `chain` and inside its own events."""

    def __init__(self, client: CarrierClient) -> None:
        self.client = client

    def anchors(self) -> list[dict[str, Any]]:
        found = []
        for msg in self.client.all:
            if msg.topic == self.client.topics.chain:
                found.append(msg.payload)
            elif msg.topic == self.client.topics.events("sf") and msg.payload.get("anchor"):
                found.append(msg.payload["anchor"])
        return found

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(a) + "\n" for a in self.anchors()))
        return path


async def _lockerctl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(lockerctl.main, list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


async def _refused(cab: Cabinet, caplog: pytest.LogCaptureFixture, needle: str) -> None:
    """A daemon on these files exits 1 at start, naming the reason."""
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        code = await asyncio.wait_for(Daemon(cab.cfg, cab.config_path).run(), 60)
    assert code == 1
    text = caplog.text
    assert "refusing to start" in text, text[-2000:]
    assert needle in text, text[-2000:]
    assert "lockerctl reset-log" in text


@pytest.fixture
async def anchored(tmp_path: Path, broker: LocalBroker) -> tuple[Cabinet, Path]:
    """A cabinet that delivered three parcels and handed one out, and the anchors sf holds."""
    workdir = tmp_path / "cab"
    workdir.mkdir()
    cab = Cabinet(workdir, mqtt=mqtt_settings(broker), oplog={"anchor_every_ops": 2},
                  carriers=[{"id": "sf", "name": "SF Express"}])
    client = CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, "sf")
    await client.start()

    def deposited() -> list[dict[str, Any]]:
        return [m.payload for m in client.all if m.topic == client.topics.events("sf")
                and m.payload.get("type") == "parcel.deposited"]

    try:
        await cab.start()
        await cab.grant("sf", "c-101", PIN)
        for n in range(3):
            await cab.call("panel.deliver", {**courier(carrier="sf"), "parcel": {
                "waybill": f"SF100000000{n}", "size": "S", "consent": True}})
        await until(lambda: len(deposited()) == 3, 30)
        code = deposited()[0]["body"]["pickup_code"]
        await cab.call("panel.pickup", {"panel": "kiosk-1", "code": code})
        head = cab.store.head[0]
        col = Collector(client)
        # the carrier holds an anchor of its last event's operation, and a chain anchor
        await until(lambda: sum(1 for m in client.all if m.topic == client.topics.events("sf")
                                and m.payload.get("type") == "parcel.picked_up") == 1, 30)
        await until(lambda: any(m.topic == client.topics.chain for m in client.all), 30)
    finally:
        await cab.stop()
        await client.stop()
    events = [m.payload for m in client.all if m.topic == client.topics.events("sf")]
    assert all(e.get("anchor") for e in events if e["type"].startswith("parcel."))
    assert not any(e.get("anchor") for e in events if not e["type"].startswith("parcel."))
    for event in events:  # each event's anchor covers its own operation: seq up to the head
        if event.get("anchor"):
            assert event["anchor"]["seq"] <= head
    return cab, col.write(tmp_path / "sf-anchors.jsonl")


def _verify_args(cab: Cabinet, anchors_file: Path) -> list[str]:
    return ["verify-log", "--anchors", str(anchors_file), "-c", str(cab.config_path)]


def _conn(cab: Cabinet) -> Any:
    key = load_key(cab.cfg.paths.key_file)
    return sqlcipher.connect(cab.cfg.paths.state_dir / cab.cfg.oplog.db_name, key.raw)


async def test_intact_log_extends_every_collected_anchor(
        anchored: tuple[Cabinet, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cab, file = anchored
    lines = file.read_text().splitlines()
    assert len(lines) >= 4
    await cab.start()  # the daemon starts on it; its identity is what the operator enrols
    try:
        code, out = await _lockerctl(capsys, "--json", "identity", "-c", str(cab.config_path))
    finally:
        await cab.stop()
    assert code == 0, out
    info = json.loads(out)
    local = load_identity(identity_dir(cab.cfg.paths) / "identity.key")
    assert info["public_key_hex"] == local.public_raw.hex()
    assert info["fingerprint_sha256"] == hashlib.sha256(local.public_raw).hexdigest()
    assert info["latest_anchor"]["cabinet"] == cab.cfg.cabinet.id
    # checked with the enrolled key, as a carrier or the regulator would
    code, out = await _lockerctl(capsys, *_verify_args(cab, file), "--public-key",
                                 info["public_key_b64"])
    assert code == 0, out
    assert f"the log extends all {len(lines)} anchors" in out
    # another key (a cabinet whose identity was swapped) does not verify them
    other = DeviceIdentity.generate().public_raw.hex()
    code, out = await _lockerctl(capsys, *_verify_args(cab, file), "--public-key", other)
    assert code == 1
    assert "signature does not verify" in out


async def test_cut_tail_is_detected(anchored: tuple[Cabinet, Path],
                                    capsys: pytest.CaptureFixture[str],
                                    caplog: pytest.LogCaptureFixture) -> None:
    cab, file = anchored
    conn = _conn(cab)
    try:
        # cut after the second delivery: the third delivery and the pickup go
        cut = conn.execute("SELECT seq FROM operations WHERE kind = 'deliver.confirm' "
                           "ORDER BY seq LIMIT 1 OFFSET 1").fetchone()[0]
        # with the key in hand, everything that points at the cut rows goes too
        for table in ("outbox", "commands", "destructions"):
            conn.execute(f"DELETE FROM {table} WHERE op_seq > ?", (cut,))
        conn.execute("DELETE FROM operations WHERE seq > ?", (cut,))
        kinds = [r[0] for r in conn.execute("SELECT kind FROM operations")]
    finally:
        conn.close()
    assert "pickup.confirm" not in kinds
    assert kinds.count("deliver.confirm") == 2
    code, out = await _lockerctl(capsys, "verify-log", "-c", str(cab.config_path),
                                 "--anchors", str(file))
    assert code == 1
    assert "chain OK" in out  # the chain alone cannot tell
    assert "TAIL WAS CUT" in out
    assert f"ends at {cut}" in out
    await _refused(cab, caplog, "TAIL WAS CUT")


async def test_edit_and_rehash_is_detected(anchored: tuple[Cabinet, Path],
                                           capsys: pytest.CaptureFixture[str],
                                           caplog: pytest.LogCaptureFixture) -> None:
    cab, file = anchored
    conn = _conn(cab)
    try:
        first = conn.execute("SELECT min(seq) FROM operations WHERE kind = 'deliver.confirm'"
                             ).fetchone()[0]
        conn.execute("UPDATE operations SET compartment = compartment + 1 WHERE seq = ?",
                     (first,))
        rows = conn.execute("SELECT seq, ts, kind, actor, compartment, parcel_id, body, "
                            "prev_hash FROM operations WHERE seq >= ? ORDER BY seq",
                            (first,)).fetchall()
        prev = rows[0][7]
        for seq, ts, kind, actor, comp, pid, body, _ in rows:
            digest = row_hash(seq, ts, kind, actor, comp, pid, body, prev)
            conn.execute("UPDATE operations SET prev_hash = ?, hash = ? WHERE seq = ?",
                         (prev, digest, seq))
            prev = digest
    finally:
        conn.close()
    code, out = await _lockerctl(capsys, *_verify_args(cab, file))
    assert code == 1
    assert "chain OK" in out  # rehashed: the chain walks clean
    assert "REWRITTEN" in out
    await _refused(cab, caplog, "REWRITTEN")


async def test_replaced_database_is_detected_refused_and_reset_is_recorded(
        anchored: tuple[Cabinet, Path], capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture, broker: LocalBroker) -> None:
    cab, file = anchored
    state_dir = cab.cfg.paths.state_dir
    old = anchor_state.load_state(identity_dir(cab.cfg.paths))
    assert old is not None
    for name in DB_FILES:
        (state_dir / name).unlink(missing_ok=True)
    # a database that was simply deleted: the daemon would begin an empty log
    await _refused(cab, caplog, "EMPTY")
    # a fresh log put in its place (with the key in hand)
    for name in DB_FILES:
        (state_dir / name).unlink(missing_ok=True)
    key = load_key(cab.cfg.paths.key_file)
    async with await OpLog.open(state_dir / cab.cfg.oplog.db_name, key) as fresh:
        await fresh.append("daemon.started", actor="lockerd", body={"version": "0.1.0"})
    code, out = await _lockerctl(capsys, *_verify_args(cab, file))
    assert code == 1
    assert "REPLACED" in out
    await _refused(cab, caplog, "REPLACED")

    # the one way on: root's reset request, honoured at the next start
    code, out = await _lockerctl(capsys, "reset-log", "-c", str(cab.config_path),
                                 "--reason", "SD card replaced after water damage")
    assert code == 0, out
    assert f"up to operation {old.seq}" in out
    client = CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, "sf")
    await client.start()
    try:
        await cab.start()
        first_reset = await cab.ops("oplog.reset")
        assert len(first_reset) == 1
        body = first_reset[0].body
        assert body["previous_epoch"] == old.epoch
        assert body["previous_seq"] == old.seq
        assert body["previous_hash"] == old.hash
        assert body["reason"] == "SD card replaced after water damage"
        new_epoch = await cab.store.read(anchors.chain_epoch)
        # the reset is anchored at once and published retained with the new epoch
        await until(lambda: any(m.topic == client.topics.chain
                                and m.payload.get("epoch") == new_epoch for m in client.all), 30)
        assert not (identity_dir(cab.cfg.paths) / anchor_state.RESET_FILE).exists()
        published = [m.payload for m in client.all if m.topic == client.topics.chain
                     and m.payload.get("epoch") == new_epoch]
    finally:
        await cab.stop()
        await client.stop()
    # the replaced DB was not the reset's (seq 1 of the fresh one is its own start): the reset
    # is recorded after it; the old anchors are covered by the declared old head
    with file.open("a") as fh:
        fh.writelines(json.dumps(a) + "\n" for a in published)
    code, out = await _lockerctl(capsys, *_verify_args(cab, file))
    assert code == 0, out
    assert "predate a recorded reset" in out
    # and a second start needs no reset: the new log extends its own anchor state
    await cab.start()
    assert len(await cab.ops("oplog.reset")) == 1
    await cab.stop()


async def test_reset_of_an_empty_log_is_its_first_record(
        anchored: tuple[Cabinet, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cab, _file = anchored
    state_dir = cab.cfg.paths.state_dir
    shutil.rmtree(state_dir / "backups", ignore_errors=True)
    for name in DB_FILES:
        (state_dir / name).unlink(missing_ok=True)
    code, out = await _lockerctl(capsys, "--json", "reset-log", "-c", str(cab.config_path),
                                 "--reason", "new log after board swap")
    assert code == 0, out
    await cab.start()
    ops = await cab.ops()
    assert ops[0].seq == 1
    assert ops[0].kind == "oplog.reset"
    assert ops[0].actor == "uid:0"
    await cab.stop()
