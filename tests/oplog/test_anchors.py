"""Anchors in isolation: the canonical bytes, signatures, the wire form, the identity file, the
anchor state, and what `problem` says about a real SQLCipher log that was cut, rewritten or
replaced."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd.oplog import OpLog, OplogKey, anchor_state, anchors
from lockerd.oplog.errors import KeyRefused
from lockerd.oplog.identity import (
    IDENTITY_FILE,
    DeviceIdentity,
    fingerprint,
    load_identity,
    load_or_create,
)

CAB = "CAB-0001"
EPOCH = "0123456789abcdef" * 2
HASH = "ab" * 32
TS = "2026-03-01T08:00:00.123Z"
# RFC 8032 test 1 secret key: anyone can recompute the vector below from docs/oplog.md.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def _identity(seed: bytes = SEED) -> DeviceIdentity:
    return DeviceIdentity(Ed25519PrivateKey.from_private_bytes(seed))


def test_signed_bytes_are_the_documented_lines() -> None:
    assert anchors.signed_bytes(CAB, EPOCH, 42, HASH, TS) == (
        b"lockerd-anchor/1\nCAB-0001\n" + EPOCH.encode() + b"\n42\n" + HASH.encode()
        + b"\n2026-03-01T08:00:00.123Z")


def test_known_vector_and_fingerprint() -> None:
    ident = _identity()
    assert ident.public_raw.hex() == \
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert ident.fingerprint == fingerprint(ident.public_raw)
    assert ident.key_id == ident.fingerprint[:16]
    made = anchors.make(ident, CAB, EPOCH, 42, HASH, TS)
    # Ed25519 is deterministic: these bytes and this key give this signature in any library
    # (the vector in docs/oplog.md).
    assert made.key_id == "21fe31dfa154a261"
    assert made.to_json()["sig"] == ("MerRbRoYhSkEfuag68gsFfFwygg5LxJgaTpHj50DhcBcpDLi8Og75XIP7nGwj"
                                     "q8MQfgsYnefgZrVPA30Izn4AQ==")
    assert made.verifies(ident.public_raw)


@pytest.mark.parametrize(("field", "value"), [("cabinet", "CAB-0002"), ("epoch", "f" * 32),
                                         ("seq", 43), ("hash", "cd" * 32),
                                         ("ts", "2026-03-01T08:00:00.124Z")])
def test_any_changed_field_breaks_the_signature(field: str, value: object) -> None:
    ident = _identity()
    wire = anchors.make(ident, CAB, EPOCH, 42, HASH, TS).to_json()
    wire[field] = value
    assert not anchors.from_json(wire).verifies(ident.public_raw)


def test_another_key_does_not_verify() -> None:
    made = anchors.make(_identity(), CAB, EPOCH, 42, HASH, TS)
    other = DeviceIdentity.generate()
    assert not made.verifies(other.public_raw)


def test_wire_form_round_trips_and_refuses_malformed() -> None:
    made = anchors.make(_identity(), CAB, EPOCH, 7, HASH, TS)
    wire = made.to_json()
    assert set(wire) == {"v", "cabinet", "epoch", "seq", "hash", "ts", "key_id", "sig"}
    assert len(base64.b64decode(wire["sig"])) == 64
    assert anchors.from_json(json.loads(json.dumps(wire))) == made
    for bad in ({**wire, "extra": 1}, {**wire, "seq": 0}, {**wire, "seq": True},
                {**wire, "epoch": "XYZ"}, {**wire, "cabinet": "a\nb"}, {**wire, "sig": "!!"},
                {**wire, "sig": base64.b64encode(b"x" * 63).decode()}, {**wire, "v": 2}):
        with pytest.raises(anchors.AnchorError):
            anchors.from_json(bad)


def test_identity_created_once_0600_and_checked(tmp_path: Path) -> None:
    ident, created = load_or_create(tmp_path / "id")
    assert created
    path = tmp_path / "id" / IDENTITY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    again, created_again = load_or_create(tmp_path / "id")
    assert not created_again
    assert again.public_raw == ident.public_raw
    os.chmod(path, 0o644)
    with pytest.raises(KeyRefused, match="chmod 600"):
        load_identity(path)
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(KeyRefused, match="hex"):
        load_identity(path)


def test_anchor_state_round_trip_and_damage(tmp_path: Path) -> None:
    assert anchor_state.load_state(tmp_path) is None
    made = anchors.make(_identity(), CAB, EPOCH, 9, HASH, TS)
    anchor_state.save_state(tmp_path, made)
    assert (tmp_path / anchor_state.STATE_FILE).stat().st_mode & 0o777 == 0o600
    assert anchor_state.load_state(tmp_path) == made
    (tmp_path / anchor_state.STATE_FILE).write_text('{"v": 1, "seq": "x"}')
    with pytest.raises(anchor_state.AnchorStateError, match="reset-log"):
        anchor_state.load_state(tmp_path)


async def _log(path: Path, key: OplogKey, ops: int) -> list[tuple[int, str]]:
    async with await OpLog.open(path, key) as store:
        for i in range(ops):
            await store.append("test.op", actor="test", body={"count": i})
        return await store.read(lambda c: [(int(s), str(h)) for s, h in c.execute(
            "SELECT seq, hash FROM operations ORDER BY seq")])


async def test_problem_names_cut_rewritten_replaced_and_reset(tmp_path: Path) -> None:
    from lockerd.oplog import sqlcipher

    key = OplogKey.generate()
    ident = _identity()
    rows = await _log(tmp_path / "a.db", key, 6)
    epoch = anchors.epoch_of(rows[0][1])
    anchor = anchors.make(ident, CAB, epoch, 6, rows[5][1], TS)
    conn = sqlcipher.connect(tmp_path / "a.db", key.raw)
    try:
        assert anchors.problem(conn, anchor, ident.public_raw, CAB) is None
        assert "cabinet" in str(anchors.problem(conn, anchor, ident.public_raw, "CAB-9"))
        forged = anchors.Anchor(CAB, epoch, 6, rows[5][1], TS, ident.key_id, b"\0" * 64)
        assert "signature" in str(anchors.problem(conn, forged, ident.public_raw, CAB))
        conn.execute("UPDATE operations SET hash = ? WHERE seq = 6", ("ee" * 32,))
        assert "REWRITTEN" in str(anchors.problem(conn, anchor, ident.public_raw, CAB))
        conn.execute("DELETE FROM operations WHERE seq >= 5")
        assert "TAIL WAS CUT" in str(anchors.problem(conn, anchor, ident.public_raw, CAB))
        conn.execute("DELETE FROM operations")
        assert "EMPTY" in str(anchors.problem(conn, anchor, ident.public_raw, CAB))
    finally:
        conn.close()
    await _log(tmp_path / "b.db", key, 2)
    conn = sqlcipher.connect(tmp_path / "b.db", key.raw)
    try:
        assert "REPLACED" in str(anchors.problem(conn, anchor, ident.public_raw, CAB))
        # a recorded reset covers the old log's anchors up to the head it declared, no further
        resets = {epoch: anchors.ResetMark(3, 6, rows[5][1], "board swap")}
        assert anchors.problem(conn, anchor, ident.public_raw, CAB, resets) is None
        short = {epoch: anchors.ResetMark(3, 5, rows[4][1], "board swap")}
        assert "hid operations" in str(anchors.problem(conn, anchor, ident.public_raw, CAB,
                                                        short))
    finally:
        conn.close()


async def test_keeper_anchors_after_n_operations_and_after_m_minutes(tmp_path: Path) -> None:
    from lockerd.oplog.anchoring import AnchorKeeper

    keeper = AnchorKeeper(CAB, tmp_path / "id", every_ops=3, every_min=10)
    async with await OpLog.open(tmp_path / "k.db", OplogKey.generate()) as store:
        assert await keeper.gate(store) is None  # first start: no state, nothing to refuse
        await store.append("test.op", actor="test", body={"count": 0})
        first = await keeper.begin(store)
        assert first.seq == 1
        assert anchor_state.load_state(tmp_path / "id") == first
        for i in range(2):
            await store.append("test.op", actor="test", body={"count": i})
        assert await keeper.tick(store) is None  # two operations, ten minutes not up
        await store.append("test.op", actor="test", body={"count": 3})
        after_ops = await keeper.tick(store)
        assert after_ops is not None
        assert after_ops.seq == 4
        keeper._last_at -= 601  # ten minutes later, nothing happened: anchored again
        after_time = await keeper.tick(store)
        assert after_time is not None
        assert after_time.seq == 4
        assert keeper.board.latest == after_time
        assert anchor_state.load_state(tmp_path / "id") == after_time
        # a parcel event's envelope gets the signed head at its own operation
        from lockerd.oplog import OutboxMessage

        op = await store.append("deliver.confirm", actor="test", body={}, outbox=[
            OutboxMessage("sf", "t/events", {"type": "parcel.deposited", "body": {}}),
            OutboxMessage("sf", "t/events", {"type": "courier.granted", "body": {}})])
        rows = await store.outbox_pending()
        payloads = [json.loads(r.payload_bytes) for r in rows]
        signed = anchors.from_json(payloads[0]["anchor"])
        assert (signed.seq, signed.hash, signed.epoch) == (op.seq, op.hash, first.epoch)
        assert signed.verifies(keeper.identity.public_raw)  # type: ignore[union-attr]
        assert "anchor" not in payloads[1]


def test_identity_that_cannot_be_created_is_refused_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(KeyRefused, match="identity_dir"):
        load_or_create(blocker / "id")
