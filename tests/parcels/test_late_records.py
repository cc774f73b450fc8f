"""Door-cycle ends kept while the disk is full, and doors whose state was unknown, on fake ports.

The daemon-level runs are tests/parcels/test_disk_full.py (a real tmpfs) and test_lost_reply.py
(the simulator); these pin the service's rules quickly: the order of late records, the codes,
and how a door reading settles a held compartment.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from lockerd.domain import CompartmentState, ErrorCode, ParcelStatus
from lockerd.domain.errors import Refused
from lockerd.oplog import OutboxMessage
from tests.parcels.test_write_ahead import SF, FakeLog, Rig, deposited, make_rig, parcel

SF_PANEL = "k1"


class FullLog(FakeLog):
    """A log whose disk is full while `full` is set (ENOSPC, as the writer thread sees it)."""

    full: bool = False

    async def append(self, kind: str, *, actor: str, body: Mapping[str, Any],
                     compartment: int | None = None, parcel_id: str | None = None,
                     outbox: Sequence[OutboxMessage] = (),
                     mutate: Callable[[Any], None] | None = None) -> object:
        if self.full:
            self.calls.append(f"full:{kind}")
            raise OSError(errno.ENOSPC, "No space left on device")
        return await super().append(kind, actor=actor, body=body, compartment=compartment,
                                    parcel_id=parcel_id, outbox=outbox, mutate=mutate)


@pytest.fixture
def rig() -> Rig:
    r = make_rig()
    log = FullLog(r.calls)
    r.log = log
    r.service._log_handle = log
    return r


def full_log(rig: Rig) -> FullLog:
    assert isinstance(rig.log, FullLog)
    return rig.log


async def test_a_begin_on_a_full_disk_is_refused_disk_full_and_moves_nothing(rig: Rig) -> None:
    full_log(rig).full = True
    with pytest.raises(Refused) as info:
        await rig.service.deliver(SF, SF_PANEL, parcel())
    assert info.value.code is ErrorCode.DISK_FULL
    assert rig.doors.pulses == 0
    assert len(rig.service.late) == 0


async def test_an_end_on_a_full_disk_is_kept_and_recorded_first_once_space_returns(
        rig: Rig) -> None:
    cid, code = await deposited(rig)
    log = full_log(rig)

    async def pickup_while_the_disk_fills() -> None:
        # the begin is recorded, the door opens, then the disk is full for the confirm
        orig = rig.doors.wait_closed

        async def closing(c: int, t: float) -> bool:
            log.full = True
            setattr(rig.doors, "wait_closed", orig)  # noqa: B010 - undo the hook
            return await orig(c, t)
        setattr(rig.doors, "wait_closed", closing)  # noqa: B010 - a door closing on a full disk
        await rig.service.pickup(SF_PANEL, code)

    with pytest.raises(Refused) as info:
        await pickup_while_the_disk_fills()
    assert info.value.code is ErrorCode.DISK_FULL
    detail = info.value.detail
    assert detail is not None
    assert (detail["compartment"], detail["recorded"]) == (cid, False)
    comp = rig.cabinet.state.compartments[cid]
    assert (comp.state, comp.pending is not None) == (CompartmentState.OPENING, True)
    assert len(rig.service.late) == 1
    # a door fault meanwhile waits for the operation's end, as during any door operation
    assert await rig.service.door_fault(cid, "door_forced") is None
    # still full: the next decision is refused too, and the kept end stays first in line
    with pytest.raises(Refused):
        await rig.service.deliver(SF, SF_PANEL, parcel("SF1000002"))
    assert len(rig.service.late) == 1
    log.full = False
    done = await rig.service.deliver(SF, SF_PANEL, parcel("SF1000003"))
    assert done.ok
    for _ in range(20):  # the door fault that waited is recorded once the end has been
        await asyncio.sleep(0)
    kinds = log.kinds()
    late = kinds.index("pickup.confirm")
    assert kinds[late:late + 2] == ["pickup.confirm", "deliver.begin"]  # the kept end first
    assert sorted(kinds[late + 2:]) == ["compartment.block", "deliver.confirm"]
    assert kinds.count("pickup.confirm") == 1
    assert "pickup.rollback" not in kinds
    assert rig.cabinet.state.compartments[cid].state is not CompartmentState.OPENING
    assert len(rig.service.late) == 0
    assert rig.cabinet.state.compartments[cid].blocked_reason == "door_forced"
    await rig.service.late.stop()


@pytest.mark.parametrize(("is_open", "state", "reason"), [
    (False, CompartmentState.OCCUPIED, None),
    (True, CompartmentState.BLOCKED, "door_opened_unrecorded")])
async def test_a_reading_of_the_door_settles_a_held_compartment(
        rig: Rig, is_open: bool, state: CompartmentState, reason: str | None) -> None:
    cid, code = await deposited(rig)
    rig.doors.outcome = "unknown"
    failed = await rig.service.pickup(SF_PANEL, code)
    assert failed.failed is ErrorCode.DOOR_STATE_UNKNOWN
    comp = rig.cabinet.state.compartments[cid]
    assert (comp.state, comp.blocked_reason) == (CompartmentState.BLOCKED, "door_state_unknown")
    pid = comp.parcel_id
    assert pid is not None
    assert rig.cabinet.state.parcels[pid].status is ParcelStatus.IN_LOCKER
    pulses = rig.doors.pulses
    again = await rig.service.pickup(SF_PANEL, code)
    assert again.error is ErrorCode.WRONG_CODE
    assert rig.doors.pulses == pulses  # held: the code pulses nothing
    settled = await rig.service.door_state_known(cid, is_open)
    assert settled is not None
    assert settled.ok
    comp = rig.cabinet.state.compartments[cid]
    assert (comp.state, comp.blocked_reason) == (state, reason)
    # settled once: a later reading changes nothing (released), or staff decide (opened)
    later = await rig.service.door_state_known(cid, False)
    assert later is None
