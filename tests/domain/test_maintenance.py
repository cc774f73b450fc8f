"""Blocked compartments owned by the domain: why, since when, by whom; kept across a rebuild."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from lockerd.domain import Cabinet, DoorFailure, ErrorCode
from tests.domain.test_flows import SF, deposited, granted, parcel, refused_unchanged
from tests.fixtures.domain import SPEC, Harness


def test_a_door_failure_block_says_why_since_when_and_by_whom(h: Harness) -> None:
    granted(h)
    cid, code, _ = deposited(h)
    h.run(h.cab.begin_pickup("k1", code))
    h.run(h.cab.door_failed(cid, DoorFailure.JAMMED))
    comp = h.cab.blocks()[cid]
    assert (comp.blocked_reason, comp.blocked_by, comp.blocked_since) == ("door_jammed", "doors",
                                                                          h.clock.now)
    # a second block keeps the first time and author (the incident's age stays honest)
    h.clock.advance(timedelta(hours=1))
    assert h.run(h.cab.block(cid, "latch replaced", "uid:1001")).ok
    again = h.cab.blocks()[cid]
    assert (again.blocked_reason, again.blocked_by, again.blocked_since) == (
        "latch replaced", "doors", comp.blocked_since)
    back = h.run(h.cab.unblock(cid, "uid:1001"))
    assert back.result == {"compartment": cid, "state": "occupied", "released": "latch replaced"}
    assert h.cab.blocks() == {}
    assert h.run(h.cab.begin_pickup("k2", code)).ok


def test_block_is_refused_during_a_door_operation(h: Harness) -> None:
    granted(h)
    h.run(h.cab.begin_deposit(SF, "k1", parcel()))
    refused_unchanged(h, h.cab.block(1, "x", "uid:1001"), ErrorCode.BAD_STATE)


def test_blocks_survive_a_rebuild_from_the_snapshot(h: Harness) -> None:
    granted(h)
    assert h.run(h.cab.block(3, "hinge loose", "uid:1001")).ok
    rebuilt = Cabinet.from_dict(SPEC, h.clock, random.Random(0), json.loads(json.dumps(h.cab.to_dict())))
    assert rebuilt.blocks() == h.cab.blocks()
    assert rebuilt.blocks()[3].blocked_by == "uid:1001"
