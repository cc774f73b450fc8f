"""Door physics of the simulator: latch, spring, person, faults."""

from __future__ import annotations

from lockerd.sim.physics import SPRING_S, BoardModel


def test_pulse_opens_after_spring_then_person_closes() -> None:
    b = BoardModel(1, 4, close_after_s=1.0)
    b.energise(1, 0.7, now=10.0)
    assert b.door_open(10.0 + SPRING_S / 2) == [False] * 4
    assert b.door_open(10.0 + SPRING_S) == [False, True, False, False]
    assert b.relays(10.5)[1]
    assert not b.relays(10.8)[1]
    assert b.door_open(11.05)[1]
    assert not b.door_open(11.15)[1]


def test_jammed_latch_and_held_door() -> None:
    b = BoardModel(1, 2, close_after_s=0.5)
    b.jam(0)
    b.energise(0, 0.7, now=0.0)
    assert b.door_open(5.0) == [False, False]
    assert b.pulse_counts() == [1, 0]
    b.force_open(1, now=6.0)
    b.hold_open(1)
    assert b.door_open(100.0)[1]
    b.hold_open(1, False)
    assert not b.door_open(100.1)[1]


def test_active_low_inputs() -> None:
    b = BoardModel(1, 2, inputs_active_low=True)
    assert b.input_bits(0.0) == [True, True]
    b.force_open(0, 0.0)
    assert b.input_bits(0.0) == [False, True]
