"""The raw FC02 codec of the Modbus door poll: golden frames, round trip, hostile replies.

Golden frames: the FC02 example of the Modbus Application Protocol Specification V1.1b3
§6.2 ("Read Discrete Inputs": inputs 197-218 of a slave, request PDU `02 00 C4 00 16`, reply
PDU `02 03 AC DB 35`), framed for unit 1 with the RTU CRC of Modbus over Serial Line V1.02
§6.2.2; the CRCs are cross-checked against the simulator's bitwise CRC (itself checked against
mbpoll in tests/sim/test_mbpoll.py) and the read frame of docs/boards.md.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockerd import sim
from lockerd.config import Board, Hardware, SerialPort
from lockerd.drivers.base import DoorState
from lockerd.drivers.errors import DriverError, DriverTimeout, FrameError
from lockerd.drivers.frames_modbus import (
    BoardRefused,
    decode_read_inputs_reply,
    encode_read_inputs_reply,
    find_read_inputs_reply,
    read_inputs_reply_len,
    read_inputs_request,
)
from lockerd.drivers.lockboard_modbus import ModbusBus, WaveshareBoard
from lockerd.sim.modbus_rtu import crc16, with_crc

SPEC_REQUEST = bytes.fromhex("01 02 00 C4 00 16 B8 39")
SPEC_REPLY = bytes.fromhex("01 02 03 AC DB 35 22 88")
SPEC_INPUTS = (
    # 0xAC: inputs 204-197, 0xDB: 212-205, 0x35: 218-213 (LSB first)
    False, False, True, True, False, True, False, True,
    True, True, False, True, True, False, True, True,
    True, False, True, False, True, True)


def test_spec_example_request_is_golden() -> None:
    assert read_inputs_request(1, 22, start=0xC4) == SPEC_REQUEST
    assert with_crc(SPEC_REQUEST[:-2]) == SPEC_REQUEST


def test_spec_example_reply_decodes_to_the_spec_bits() -> None:
    assert with_crc(SPEC_REPLY[:-2]) == SPEC_REPLY
    assert decode_read_inputs_reply(SPEC_REPLY, 1, 22) == SPEC_INPUTS
    assert encode_read_inputs_reply(1, SPEC_INPUTS) == SPEC_REPLY


def test_door_poll_request_equals_docs_boards_frame() -> None:
    assert read_inputs_request(1, 8) == bytes.fromhex("01 02 00 00 00 08 79 CC")


units = st.integers(1, 247)
bit_lists = st.lists(st.booleans(), min_size=1, max_size=64)


@given(unit=units, bits=bit_lists)
def test_round_trip(unit: int, bits: list[bool]) -> None:
    frame = encode_read_inputs_reply(unit, bits)
    assert len(frame) == read_inputs_reply_len(len(bits))
    assert frame[-2:] == crc16(frame[:-2])
    assert decode_read_inputs_reply(frame, unit, len(bits)) == tuple(bits)
    assert find_read_inputs_reply(frame, unit, len(bits)) == tuple(bits)


@given(unit=units, bits=bit_lists, noise=st.binary(max_size=20))
def test_reply_found_behind_noise(unit: int, bits: list[bool], noise: bytes) -> None:
    frame = encode_read_inputs_reply(unit, bits)
    assert find_read_inputs_reply(noise + frame, unit, len(bits)) == tuple(bits)


@given(unit=units, bits=bit_lists, at=st.integers(0, 200), flip=st.integers(1, 255))
def test_any_corrupted_byte_is_rejected(unit: int, bits: list[bool], at: int, flip: int) -> None:
    frame = bytearray(encode_read_inputs_reply(unit, bits))
    frame[at % len(frame)] ^= flip
    with pytest.raises(FrameError):
        decode_read_inputs_reply(bytes(frame), unit, len(bits))
    assert find_read_inputs_reply(bytes(frame), unit, len(bits)) is None


@given(unit=units, bits=bit_lists, cut=st.integers(1, 10))
def test_truncated_or_padded_replies_are_rejected(unit: int, bits: list[bool], cut: int) -> None:
    frame = encode_read_inputs_reply(unit, bits)
    with pytest.raises(FrameError):
        decode_read_inputs_reply(frame[:-cut], unit, len(bits))
    with pytest.raises(FrameError):
        decode_read_inputs_reply(frame + b"\x00" * cut, unit, len(bits))
    assert find_read_inputs_reply(frame[:-cut], unit, len(bits)) is None


@given(garbage=st.binary(max_size=64), unit=units, count=st.integers(1, 64))
def test_garbage_never_decodes_and_never_crashes(garbage: bytes, unit: int, count: int) -> None:
    try:
        bits = find_read_inputs_reply(garbage, unit, count)
    except BoardRefused:
        return  # a valid exception frame inside the garbage, CRC and all
    if bits is not None:  # only when a whole valid reply to this request is in it
        frame = encode_read_inputs_reply(unit, bits)
        assert frame in garbage


@given(bits=bit_lists, unit=units, other=units)
def test_reply_of_another_unit_or_size_is_not_ours(bits: list[bool], unit: int,
                                                   other: int) -> None:
    frame = encode_read_inputs_reply(other, bits)
    if other != unit:
        with pytest.raises(FrameError):
            decode_read_inputs_reply(frame, unit, len(bits))
    wider = len(bits) + 8
    with pytest.raises(FrameError):
        decode_read_inputs_reply(frame, other, wider)


def test_exception_reply_is_a_refusal_not_a_frame_error() -> None:
    refusal = with_crc(bytes([3, 0x82, 2]))
    with pytest.raises(BoardRefused) as caught:
        decode_read_inputs_reply(refusal, 3, 8)
    assert caught.value.code == 2
    assert isinstance(caught.value, DriverError)
    assert not isinstance(caught.value, FrameError)
    with pytest.raises(BoardRefused):
        find_read_inputs_reply(b"\x55" + refusal, 3, 8)
    bad = refusal[:-1] + bytes([refusal[-1] ^ 1])
    with pytest.raises(FrameError):
        decode_read_inputs_reply(bad, 3, 8)


def test_requests_outside_the_spec_are_not_built() -> None:
    for unit, count in ((0, 8), (248, 8), (1, 0), (1, 2001)):
        with pytest.raises(ValueError):
            read_inputs_request(unit, count)


async def _raw_rig(channels: int = 4) -> tuple[sim.SimHandle, ModbusBus, WaveshareBoard]:
    hw = Hardware(buses=[SerialPort(name="b0", baudrate=115200)],
                  boards=[Board(address=1, bus="b0", channels=4)])
    handle = sim.start_for_config(hw, close_after_s=None)
    bus = ModbusBus("b0", handle.port("b0"), baudrate=115200, read_timeout_s=0.05,
                    write_timeout_s=0.05)
    await bus.open()
    return handle, bus, WaveshareBoard(bus, 1, channels)


@pytest.mark.parametrize("fault", ["corrupt_crc", "truncate"])
async def test_hostile_reply_on_the_line_is_an_error_then_the_line_recovers(fault: str) -> None:
    handle, bus, board = await _raw_rig()
    try:
        getattr(handle.faults, fault)("b0", 1, 2)  # both the read and its one retry
        with pytest.raises(DriverError) as caught:
            await board.read()
        assert isinstance(caught.value, FrameError | DriverTimeout)
        assert bus.garbled + bus.timeouts >= 2
        snap = await board.read()
        assert snap.doors == (DoorState.CLOSED,) * 4
        assert handle.slave("b0").bad_frames == 0  # our requests were never garbled
    finally:
        bus.close()
        handle.close()


async def test_board_exception_reply_is_refused_not_retried() -> None:
    handle, bus, board = await _raw_rig(channels=16)  # the board has only 4 inputs
    try:
        sent = bus.scheduler.transactions
        with pytest.raises(DriverError, match="refused FC2 \\(exception 2\\)"):
            await board.read()
        assert bus.scheduler.transactions == sent + 1
        assert len(handle.bus("b0").rx_frames) == 1  # not re-sent
    finally:
        bus.close()
        handle.close()


async def test_relay_writes_still_go_through_pymodbus_on_the_same_port() -> None:
    handle, bus, board = await _raw_rig()
    try:
        await board.read()
        await board.pulse(2, 300)
        await board.read()
        assert handle.board("b0", 1).pulse_counts() == [0, 0, 1, 0]
        assert handle.slave("b0").bad_frames == 0
    finally:
        bus.close()
        handle.close()
