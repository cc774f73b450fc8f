"""A cabinet with a long history keeps only its live parcels, in memory and in what a restart loads.

Issue 19: the domain used to keep every parcel ever handled, so memory, every scan and the
start-up grew for the life of the cabinet. Here the real ParcelService records into a real
SQLCipher log (fake doors), runs many lifecycles, and a restart is rebuilt from the log the
way lockerd/parcels/component.py does it. The history stays in the log's `parcels` table.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lockerd.domain import LIVE_STATUSES, Cabinet, CabinetState, CourierAuth, Delivery
from lockerd.domain.ids import Size
from lockerd.oplog import OpLog, OplogKey, OutboxMessage
from lockerd.parcels.service import ParcelService
from lockerd.parcels.store import load_state
from lockerd.sync.feed import CarrierFeed
from lockerd.sync.topics import Topics
from tests.fixtures.domain import PIN, SPEC, FakeClock, in_days
from tests.parcels.test_write_ahead import FakeDoors, OpenGate

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)
LIFECYCLES = 150
WAITING = 3


def digest(code: str) -> str:
    return "sha256:" + hashlib.sha256(code.encode()).hexdigest()


class Handle:
    """The log as the service sees it, noting the pickup codes its outbox carries."""

    def __init__(self, log: OpLog) -> None:
        self.log = log
        self.codes: dict[str, str] = {}     # parcel id -> pickup code

    @property
    def store(self) -> Handle:
        return self

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (), **rest: Any) -> object:
        for m in outbox:
            if m.payload.get("type") == "parcel.deposited":
                self.codes[m.payload["body"]["parcel_id"]] = m.payload["body"]["pickup_code"]
        return await self.log.append(kind, actor=actor, body=body, compartment=compartment,
                                     parcel_id=parcel_id, outbox=outbox, **rest)


async def commit(handle: Handle, kind: str, *, body: Mapping[str, Any], result: Any = None,
                 outbox: Sequence[OutboxMessage] = (), compartment: int | None = None,
                 parcel_id: str | None = None, mutate: Any = None) -> object:
    """A carrier command's commit (lockerd.sync.commands.CommandContext.commit, no reply kept)."""
    return await handle.append(kind, actor="carrier:sf", body=body, outbox=outbox,
                               compartment=compartment, parcel_id=parcel_id, mutate=mutate)


def make_cabinet(clock: FakeClock) -> Cabinet:
    return Cabinet(SPEC, clock, random.Random(11), code_digest=digest)


async def test_a_long_history_leaves_only_live_parcels_in_memory_and_in_the_restart(
        tmp_path: Path) -> None:
    key = OplogKey.generate()
    log = await OpLog.open(tmp_path / "oplog.db", key)
    clock = FakeClock()
    cabinet = make_cabinet(clock)
    handle = Handle(log)
    service = ParcelService(cabinet, log=handle, doors=FakeDoors([]), gate=OpenGate(),
                            events=CarrierFeed(Topics("lockers", "CAB-T")), close_timeout_s=1.0)
    finished: list[str] = []
    try:
        granted = await service.grant_courier("sf", "c1", in_days(clock, 400),
                                              functools.partial(commit, handle), pin=PIN)
        assert granted.ok
        waiting: list[str] = []
        for n in range(LIFECYCLES):
            done = await service.deliver(SF, "k1", Delivery(waybill=f"SF{n:08d}", size=Size.S,
                                                            consent=True))
            assert done.ok, done.error
            waiting.append(str(done.record.parcel_id))
            if len(waiting) > WAITING or n == LIFECYCLES - 1:
                pid = waiting.pop(0)
                got = await service.pickup("k2", handle.codes[pid])
                assert got.record.kind == "pickup.confirm", got.error
                # the moment its end is recorded, the parcel is gone from memory and its indexes
                assert pid not in cabinet.state.parcels
                assert cabinet.state.parcel_by_code(digest(handle.codes[pid])) is None
                finished.append(pid)
            clock.advance(in_days(clock, 1) - clock.now)
        assert set(cabinet.state.parcels) == set(waiting)
        before = cabinet.to_dict()
    finally:
        await log.close()

    # restart: what lockerd/parcels/component.py start reads
    log = await OpLog.open(tmp_path / "oplog.db", key)
    try:
        data = await log.read(load_state)
        rows = await log.read(lambda c: c.execute(
            "SELECT count(*), sum(closed_at IS NOT NULL) FROM parcels").fetchone())
    finally:
        await log.close()
    assert set(data["parcels"]) == set(waiting)
    assert all(p["status"] in LIVE_STATUSES for p in data["parcels"].values())
    state = CabinetState.model_validate(data)
    assert set(state.parcels) == set(waiting)
    for pid in waiting:
        parcel = state.parcels[pid]
        assert parcel.code is not None
        assert state.parcel_by_code(parcel.code) == parcel
    again = make_cabinet(clock)
    again.state = state
    assert again.to_dict() == before
    # the history is in the log, not in what the restart loads
    assert rows == (LIFECYCLES, len(finished))
    assert len(finished) == LIFECYCLES - len(waiting)
    # a code of a finished parcel opens nothing after the restart either
    assert again.begin_pickup("k3", handle.codes[finished[0]]).open_door is None
    assert again.begin_pickup("k3", handle.codes[waiting[0]]).open_door is not None
