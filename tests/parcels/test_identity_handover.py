"""ID-checked handover of government documents (特投 spec, 投递 item 3) through the real API and a
real mosquitto, with the simulated ID-card reader.

The carrier announces `handover: id_check` with its keyed hash of the recipient's ID number over
MQTT; delivery on a reader-less cabinet is refused; on a cabinet with a reader the code opens
nothing without a card, a wrong person is refused, the recipient and a proxy (with relation) are
accepted, and each handover reaches the carrier as `parcel.receipt`. Afterwards the state
directory, the broker's persistence, the text log and stdout hold nothing of the cards in clear.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lockerd.demo.identity import recipient_hash
from lockerd.sim.idcard import LONG_TERM_CARD, VALID_CARD, X_CARD, IdCardSim
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, mqtt_settings, until

pytestmark = pytest.mark.asyncio

CARDS = (VALID_CARD, LONG_TERM_CARD, X_CARD)


def clear_forms() -> list[bytes]:
    """The clear personal fields of the test cards, as UTF-8 and as the card's UCS-2."""
    out: list[bytes] = []
    for card in CARDS:
        for value in (card.name, card.id_number, card.address, card.id_number[:17]):
            out += [value.encode("utf-8"), value.encode("utf-16-le")]
    return out


def scan(*roots: Path) -> int:
    """Fail on any file under `roots` holding a test card's field in clear; files scanned."""
    forms, scanned = clear_forms(), 0
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                scanned += 1
                data = path.read_bytes()
                assert not [f for f in forms if f in data], path
    return scanned


async def _cabinet(workdir: Path, broker: LocalBroker, reader: bool) -> Cabinet:
    await asyncio.to_thread(workdir.mkdir)
    cab = Cabinet(workdir, mqtt=mqtt_settings(broker), hardware={"idcard": {"enabled": reader}})
    await cab.start()
    await until(lambda: cab.d.sync.link is not None and cab.d.sync.link.connected)
    await cab.grant(CARRIER, "c-101", PIN)
    return cab


@pytest.fixture
async def reader_cab(tmp_path: Path, broker: LocalBroker) -> AsyncIterator[Cabinet]:
    cab = await _cabinet(tmp_path / "cab", broker, reader=True)
    try:
        yield cab
    finally:
        if cab.daemon is not None:
            await cab.verify()
            await cab.stop()


def _sim(cab: Cabinet) -> IdCardSim:
    readers = cab.d.parcels.id_readers
    assert readers is not None
    assert readers.sim is not None
    return readers.sim


async def _announce(carrier: CarrierClient, cab: Cabinet, waybill: str) -> dict[str, Any]:
    digest = recipient_hash(cab.d, CARRIER, VALID_CARD.id_number)
    assert digest is not None
    topic, cmd = carrier.command("parcel.expect", {
        "waybill": waybill, "size": "S", "consent": True, "handover": "id_check",
        "recipient_id_hash": digest})
    return await carrier.send_raw(topic, json.dumps(cmd).encode(), cmd["id"])


async def test_id_check_is_refused_on_a_cabinet_without_a_reader(tmp_path: Path,
                                                                  broker: LocalBroker) -> None:
    cab = await _cabinet(tmp_path / "cab", broker, reader=False)
    try:
        async with CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, CARRIER) as sf:
            reply = await _announce(sf, cab, "SF8100000001")
            assert reply["ok"]
            assert reply["result"]["deliverable"] is False
            assert reply["result"]["refusal"] == "no_id_reader"
        err = await cab.refused("panel.deliver", {**courier(), "parcel": {
            "waybill": "SF8100000001", "size": "S"}})
        assert err.code == "no_id_reader"
        await cab.verify()
    finally:
        await cab.stop()


async def test_handover_needs_the_recipients_card_or_a_proxy_with_relation(
        reader_cab: Cabinet, broker: LocalBroker, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    cab, sim = reader_cab, _sim(reader_cab)
    async with CarrierClient("127.0.0.1", broker.port, cab.cfg.cabinet.id, CARRIER) as sf:
        parcels: dict[str, tuple[str, str]] = {}
        for waybill in ("SF8200000001", "SF8200000002"):
            assert (await _announce(sf, cab, waybill))["result"]["deliverable"]
            res = await cab.call("panel.deliver", {**courier(), "parcel": {"waybill": waybill,
                                                                           "size": "S"}})
            parcels[waybill] = (res["parcel_id"], await cab.code_of(res["parcel_id"]))
        pid, code = parcels["SF8200000001"]
        # no card: the code opens nothing
        assert (await cab.refused("panel.pickup", {"code": code})).code == "id_check_required"
        # a wrong person claiming to be the recipient; an expired card
        sim.present(LONG_TERM_CARD)
        assert (await cab.refused("panel.pickup", {"code": code})).code == "id_mismatch"
        sim.present(X_CARD)
        assert (await cab.refused("panel.pickup", {"code": code,
                                                   "relation": "family"})).code == "id_card_expired"
        # the recipient
        sim.present(VALID_CARD)
        done = await cab.call("panel.pickup", {"code": code})
        assert done["status"] == "pickup.confirm"
        # a proxy with their own card and the relation
        pid2, code2 = parcels["SF8200000002"]
        sim.present(LONG_TERM_CARD)
        done = await cab.call("panel.pickup", {"code": code2, "relation": "property_management"})
        assert done["status"] == "pickup.confirm"
        sim.remove()
        await until(lambda: sum(e["type"] == "parcel.receipt" for e in sf.ledger.accepted) == 2)
        receipts = {e["body"]["parcel_id"]: e["body"] for e in sf.ledger.accepted
                    if e["type"] == "parcel.receipt"}
    mine, proxy = receipts[pid], receipts[pid2]
    assert (mine["collected_by"], mine["relation"], mine["name_masked"], mine["id_masked"]) == (
        "recipient", "self", "测*", "9****************9")
    assert (proxy["collected_by"], proxy["relation"], proxy["name_masked"],
            proxy["id_masked"]) == ("proxy", "property_management", "测*", "9****************7")
    assert mine["cabinet"] == cab.cfg.cabinet.id
    assert mine["sam_id"] == "05.01-20240101-0000000001-0000000042"
    rows = await cab.store.read(lambda c: c.execute(
        "SELECT parcel_id, purpose, outcome, relation, id_masked FROM identity_checks "
        "ORDER BY id").fetchall())
    assert [tuple(r) for r in rows] == [
        (pid, "handover", "passed", "self", "9****************9"),
        (pid2, "handover", "passed", "property_management", "9****************7")]
    begins = [(o.body.get("id_outcome"), o.body.get("error")) for o in await cab.ops("pickup.begin")]
    assert begins == [("no_card", "id_check_required"), ("passed", "id_mismatch"),
                      ("expired", "id_card_expired"), ("passed", None), ("passed", None)]
    await cab.verify()
    await cab.stop()
    await broker.stop()  # its persistence is written on a clean stop
    forms = clear_forms()
    assert scan(tmp_path / "cab", tmp_path / "broker") >= 3
    text = "\n".join(r.getMessage() for r in caplog.records).encode()
    out = capsys.readouterr()
    for blob in (text, out.out.encode(), out.err.encode()):
        assert not [f for f in forms if f in blob]
