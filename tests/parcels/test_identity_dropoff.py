"""Real-name drop-off (Art. 9, 18) on a cabinet with the simulated ID-card reader, through the real API.

The daemon runs in-process on the simulator with [hardware.idcard] enabled; the test lays the
simulator's fictional cards on the reader (the fault injector) and drives `panel.dropoff` over
the socket. Afterwards nothing of the cards in clear may be found in the state directory.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lockerd.demo.identity import recipient_hash
from lockerd.sim.idcard import EXPIRED_CARD, LONG_TERM_CARD, VALID_CARD, IdCardSim
from tests.fixtures.cabinet import CARRIER, Cabinet, courier, dropoff, running
from tests.parcels.test_identity_handover import scan
from tests.parcels.test_technician import _lockerctl

pytestmark = pytest.mark.asyncio

CARDS = (VALID_CARD, EXPIRED_CARD)


def _clear_forms() -> list[bytes]:
    """Every clear personal field of the test cards, as UTF-8 and as the card's UCS-2."""
    out: list[bytes] = []
    for card in CARDS:
        for value in (card.name, card.id_number, card.address, card.id_number[:17]):
            out += [value.encode("utf-8"), value.encode("utf-16-le")]
    return out


@pytest.fixture
async def reader_cab(tmp_path: Path) -> AsyncIterator[Cabinet]:
    async with running(tmp_path, grant=True, hardware={"idcard": {"enabled": True}}) as c:
        yield c


def _sim(cab: Cabinet) -> IdCardSim:
    readers = cab.d.parcels.id_readers
    assert readers is not None
    assert readers.sim is not None
    return readers.sim


async def test_dropoff_needs_a_card_and_keeps_the_masked_result(
        reader_cab: Cabinet, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    cab, sim = reader_cab, _sim(reader_cab)
    # no card on the reader: refused, even with a valid signed token (the reader decides here)
    err = await cab.refused("panel.dropoff", {"dropoff": dropoff()})
    assert err.code == "no_verification"
    sim.present(EXPIRED_CARD)
    err = await cab.refused("panel.dropoff", {"dropoff": dropoff(verification_ref="")})
    assert err.code == "id_card_expired"
    sim.present(VALID_CARD)
    res = await cab.call("panel.dropoff", {"dropoff": dropoff(verification_ref="")})
    sim.remove()
    pid = res["parcel_id"]
    [event] = [e for e in await cab.events("dropoff.received") if e["body"]["parcel_id"] == pid]
    check = event["body"]["identity_check"]
    assert check == {"method": "reader", "outcome": "passed", "checked_at": check["checked_at"],
                     "name_masked": "测*", "id_masked": "9****************9",
                     "sam_id": "05.01-20240101-0000000001-0000000042", "reference": None}
    assert event["body"]["verification_ref"] is None
    rows = await cab.store.read(lambda c: c.execute(
        "SELECT parcel_id, purpose, method, outcome, name_masked, id_masked, id_hash, sam_id "
        "FROM identity_checks").fetchall())
    [row] = rows
    assert row[:6] == (pid, "dropoff", "reader", "passed", "测*", "9****************9")
    assert str(row[6]).startswith("hmac-sha256:")
    assert len(str(row[6])) == len("hmac-sha256:") + 64
    assert row[7] == "05.01-20240101-0000000001-0000000042"
    # the chain has the method and outcome of every check, refused ones too, nothing else
    begins = [o.body for o in await cab.ops("dropoff.begin")]
    assert [(b.get("id_method"), b.get("id_outcome"), b.get("error")) for b in begins] == [
        ("reader", "no_card", "no_verification"), ("reader", "expired", "id_card_expired"),
        ("reader", "passed", None)]
    await cab.stop()
    # plaintext scan: state directory (log, evidence, WAL), text log records, stdout/stderr
    forms = _clear_forms()
    assert scan(tmp_path / "state") >= 2
    text = "\n".join(r.getMessage() for r in caplog.records).encode()
    out = capsys.readouterr()
    for blob in (text, out.out.encode(), out.err.encode()):
        assert not [f for f in forms if f in blob]


async def test_reader_fault_refuses(reader_cab: Cabinet) -> None:
    """A garbled read reply is no check: refused, and the next card read works again."""
    cab, sim = reader_cab, _sim(reader_cab)
    sim.present(VALID_CARD)
    sim.corrupt_next(count=1)
    err = await cab.refused("panel.dropoff", {"dropoff": dropoff(verification_ref="")})
    assert err.code == "no_verification"
    res = await cab.call("panel.dropoff", {"dropoff": dropoff(verification_ref="")})
    assert "parcel_id" in res


async def test_lockerctl_panel_reader_flows(reader_cab: Cabinet,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """`lockerctl panel dropoff` checks the card on the reader; `panel pickup --relation` hands an
    ID-checked parcel to a proxy."""
    cab, sim = reader_cab, _sim(reader_cab)
    sim.present(VALID_CARD)
    rc, out, err = await _lockerctl(cab, capsys, "panel", "dropoff", "--carrier", CARRIER,
                                    "--size", "S", "--contents", "books", "--ack-insured-value",
                                    "--ack-prohibited-items")
    assert rc == 0, err
    assert "compartment" in out
    digest = recipient_hash(cab.d, CARRIER, VALID_CARD.id_number)
    reply = await cab.command(CARRIER, "parcel.expect", {
        "waybill": "SF8300000001", "size": "S", "consent": True, "handover": "id_check",
        "recipient_id_hash": digest})
    assert reply["result"]["deliverable"], reply
    res = await cab.call("panel.deliver", {**courier(), "parcel": {"waybill": "SF8300000001",
                                                                   "size": "S"}})
    monkeypatch.setenv("LOCKER_CODE", await cab.code_of(res["parcel_id"]))
    sim.present(LONG_TERM_CARD)
    rc, out, err = await _lockerctl(cab, capsys, "panel", "pickup")
    assert rc == 1
    assert "id_mismatch" in out + err
    rc, out, err = await _lockerctl(cab, capsys, "panel", "pickup", "--relation", "colleague")
    assert rc == 0, err
    [receipt] = await cab.events("parcel.receipt")
    assert (receipt["body"]["collected_by"], receipt["body"]["relation"]) == ("proxy", "colleague")
