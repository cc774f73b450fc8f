"""Modbus RTU FC02 (read discrete inputs) frames, built and checked without pymodbus's client.

The door poll is the one exchange a Modbus cabinet makes all day long (12 boards at the idle
rate: ~24 a second), and pymodbus's client spent over a millisecond of CPU on each (transaction
bookkeeping, framer hunting, writer callbacks, logging hooks). This codec does the fixed FC02
exchange in a few microseconds: the request is built once per board, the reply length is known
in advance, and the reply is checked as hostile (CRC, address, function code, byte count,
length) before a single bit is believed. CRC is pymodbus's own table-driven `FramerRTU`
helper, so both paths agree on it. Everything else (relay writes) stays on pymodbus.

Wire format (Modbus over serial line V1.02 §2.5.1; application protocol V1.1b3 §6.2):
request  `addr 02 start_hi start_lo count_hi count_lo crc_lo crc_hi`
reply    `addr 02 nbytes data... crc_lo crc_hi`, inputs packed LSB first
refusal  `addr 82 code crc_lo crc_hi`
"""

from __future__ import annotations

import struct

from pymodbus.framer.rtu import FramerRTU

from lockerd.drivers.errors import DriverError, FrameError

FC_READ_INPUTS = 0x02
MAX_INPUTS = 2000
"""The spec's limit on inputs per FC02 request."""
EXCEPTION_LEN = 5

_BITS: tuple[tuple[bool, ...], ...] = tuple(
    tuple(bool(byte >> i & 1) for i in range(8)) for byte in range(256))
"""Each byte's eight inputs, LSB first: unpacking a reply is a table look-up per byte."""


class BoardRefused(DriverError):
    """The board answered with a Modbus exception (it understood the frame and said no)."""

    def __init__(self, unit: int, function: int, code: int) -> None:
        super().__init__(f"unit {unit}: board refused FC{function} (exception {code})")
        self.code = code


def crc(body: bytes) -> bytes:
    """The two CRC bytes as they go on the wire (low byte first) for address + PDU `body`."""
    return FramerRTU.compute_CRC(body).to_bytes(2, "big")


def read_inputs_request(unit: int, count: int, start: int = 0) -> bytes:
    """FC02 request for `count` inputs from `start` on board `unit`."""
    if not 1 <= unit <= 247 or not 1 <= count <= MAX_INPUTS or not 0 <= start <= 0xFFFF:
        raise ValueError(f"no FC02 request for unit {unit}, start {start}, count {count}")
    body = struct.pack(">BBHH", unit, FC_READ_INPUTS, start, count)
    return body + crc(body)


def read_inputs_reply_len(count: int) -> int:
    """Bytes of a good FC02 reply carrying `count` inputs."""
    return 5 + (count + 7) // 8


def encode_read_inputs_reply(unit: int, bits: tuple[bool, ...] | list[bool]) -> bytes:
    """A board's FC02 reply (for tests and simulators): inputs packed LSB first."""
    data = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            data[i // 8] |= 1 << (i % 8)
    body = bytes([unit, FC_READ_INPUTS, len(data)]) + bytes(data)
    return body + crc(body)


def decode_read_inputs_reply(frame: bytes, unit: int, count: int) -> tuple[bool, ...]:
    """The `count` inputs of one complete reply frame; FrameError or BoardRefused otherwise.

    Nothing in the frame is trusted: its length, CRC, address, function code and byte count
    must all be what an answer to our request has, or it is refused as garbled.
    """
    if len(frame) == EXCEPTION_LEN and frame[1] == FC_READ_INPUTS | 0x80:
        if crc(frame[:3]) != frame[3:] or frame[0] != unit:
            raise FrameError(f"unit {unit}: bad exception frame {frame.hex(' ')}")
        raise BoardRefused(unit, FC_READ_INPUTS, frame[2])
    nbytes = (count + 7) // 8
    if len(frame) != 5 + nbytes:
        raise FrameError(f"unit {unit}: {len(frame)}-byte reply, expected {5 + nbytes}")
    if crc(frame[:-2]) != frame[-2:]:
        raise FrameError(f"unit {unit}: bad CRC in {frame.hex(' ')}")
    if frame[0] != unit or frame[1] != FC_READ_INPUTS or frame[2] != nbytes:
        raise FrameError(f"unit {unit}: not our reply: {frame.hex(' ')}")
    bits: tuple[bool, ...] = ()
    for byte in frame[3:3 + nbytes]:
        bits += _BITS[byte]
    return bits[:count]


def find_read_inputs_reply(buf: bytes, unit: int, count: int) -> tuple[bool, ...] | None:
    """The inputs of the first valid reply (or refusal) anywhere in `buf`; None = none yet.

    Bytes in front of the reply (a late answer, noise) are skipped the way an RTU master
    skips them after line silence: only a whole frame with a good CRC that answers our
    request is taken. A refusal raises BoardRefused.
    """
    need = read_inputs_reply_len(count)
    if len(buf) == need and buf[0] == unit:  # the usual case: exactly our reply
        try:
            return decode_read_inputs_reply(buf, unit, count)
        except FrameError:
            pass
    head = bytes([unit, FC_READ_INPUTS])
    refusal = bytes([unit, FC_READ_INPUTS | 0x80])
    for at in range(len(buf) - EXCEPTION_LEN + 1):
        if buf[at] != unit:
            continue
        if buf.startswith(head, at) and at + need <= len(buf):
            try:
                return decode_read_inputs_reply(buf[at:at + need], unit, count)
            except FrameError:
                continue
        if buf.startswith(refusal, at):
            try:
                decode_read_inputs_reply(buf[at:at + EXCEPTION_LEN], unit, count)
            except FrameError:
                continue
    return None
