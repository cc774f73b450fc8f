"""Broker outage with a daemon restart in the middle: every event arrives exactly once, in order."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lockerd.app.events import Alert, AlertKind, Severity
from lockerd.oplog import OpLog, OplogKey
from lockerd.sync import SyncComponent, event_message
from lockerd.testing.broker import LocalBroker
from lockerd.testing.carrier import CarrierClient
from tests.fixtures.sync import CAB, SyncFactory

log = logging.getLogger(__name__)
EVENTS = 1000


async def _until(pred: object, limit_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while not pred():  # type: ignore[operator]
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _events(oplog: OpLog, comp: SyncComponent, start: int, count: int) -> None:
    carriers = ("sf", "yto")
    for chunk in range(start, start + count, 100):
        await asyncio.gather(*(
            oplog.append("parcel.deposited", actor="test", body={"n": n},
                         outbox=[event_message(comp.topics, carriers[n % 2], "parcel.deposited",
                                               {"n": n})])
            for n in range(chunk, min(chunk + 100, start + count))))


async def test_outage_with_restart_loses_and_repeats_nothing(
        make_sync: SyncFactory, broker: LocalBroker, oplog: OpLog, oplog_key: OplogKey,
        tmp_path: Path) -> None:
    comp = await make_sync(backlog_alert_s=1.0)
    await _until(lambda: comp.link is not None and comp.link.connected)
    sf = CarrierClient("127.0.0.1", broker.port, CAB, "sf", client_id="carrier-sf-outage")
    yto = CarrierClient("127.0.0.1", broker.port, CAB, "yto", client_id="carrier-yto-outage")
    await sf.start()
    await yto.start()
    reopened: OpLog | None = None
    comp2: SyncComponent | None = None
    try:
        await broker.stop()
        await _until(lambda: not comp.link.connected)  # type: ignore[union-attr]
        await _events(oplog, comp, 0, EVENTS // 2)
        # the daemon restarts while offline: component and log closed, reopened from the file
        await comp.stop()
        await oplog.close()
        reopened = await OpLog.open(tmp_path / "oplog.db", oplog_key)
        comp2 = await make_sync(log=reopened, backlog_alert_s=1.0)
        await _events(reopened, comp2, EVENTS // 2, EVENTS - EVENTS // 2)
        pending, _ = await reopened.outbox_stats()
        assert pending >= EVENTS
        # the backlog is older than the threshold: sync_backlog is raised (into the outbox)
        await _until(lambda: comp2.status()["backlog_alert"], 15)
        await broker.start()
        await sf.wait_events(EVENTS // 2, 60)
        await yto.wait_events(EVENTS - EVENTS // 2, 60)
        await _until(lambda: comp2.status()["backlog"] == 0, 30)
        await _until(lambda: not comp2.status()["backlog_alert"], 15)
        await _until(lambda: sum(m.topic == sf.topics.alerts for m in sf.all) >= 2, 15)
        for client, parity in ((sf, 0), (yto, 1)):
            led = client.ledger
            assert led.gaps == []
            assert [e["seq"] for e in led.accepted] == list(range(1, EVENTS // 2 + 1))
            assert [e["body"]["n"] for e in led.accepted] == list(range(parity, EVENTS, 2))
            assert len({e["event_id"] for e in led.accepted}) == EVENTS // 2
            log.warning("outage: carrier %s accepted %d events, %d duplicates dropped",
                        client.carrier, len(led.accepted), led.duplicates)
        alerts = [m.payload for m in sf.all if m.topic == sf.topics.alerts]
        backlog = [a for a in alerts if a["kind"] == AlertKind.SYNC_BACKLOG.value]
        # raised (by the first component too when the offline stretch before its stop already
        # exceeded the threshold on a loaded machine: the restarted one raises it again), then
        # cleared; a repeated state is harmless to a carrier, a missing clear is not
        states = [a["active"] for a in backlog]
        assert [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]][:2] == [True, False]
        # an alert from another component (doors) goes the same way
        comp2.bus.publish(Alert(AlertKind.DOOR_JAMMED, Severity.CRITICAL, True, "door 3 jammed",
                                compartment=3))
        await _until(lambda: any(m.payload.get("kind") == "door_jammed" for m in yto.all), 15)
        jam = next(m.payload for m in yto.all if m.payload.get("kind") == "door_jammed")
        assert jam["compartment"] == 3
        assert jam["active"] is True
        assert jam["v"] == 1
        assert (await reopened.verify()).ok
    finally:
        await sf.stop()
        await yto.stop()
        if comp2 is not None:
            await comp2.stop()
        if reopened is not None:
            await reopened.close()
