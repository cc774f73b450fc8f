"""Modbus RTU slave front end of the simulator: decodes request frames, drives the door physics.

Hand-written rather than a pymodbus server: the Waveshare "flash" write is FC05 with a
non-standard value (pulse length in 100 ms units) that pymodbus 3.16's server datastore rejects
or coerces to a bool, and the simulator needs per-frame control (line timing, dropped, corrupted
and late replies) below the level the pymodbus server exposes. The frame format is small and
fixed, and the same CRC and bit packing are checked against mbpoll (libmodbus) in the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from lockerd.sim.physics import BoardModel

FLASH_BASE = 0x0200
ALL_COILS = 0x00FF


def crc16(data: bytes) -> bytes:
    """Modbus CRC-16 (poly 0xA001, init 0xFFFF), low byte first as on the wire."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


def with_crc(body: bytes) -> bytes:
    """Append the CRC to an address+PDU body."""
    return body + crc16(body)


def pack_bits(bits: list[bool]) -> bytes:
    """Coil/input bits packed LSB first, as Modbus FC01/FC02 replies carry them."""
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i // 8] |= 1 << (i % 8)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply frame for the line engine to transmit (or drop, corrupt, delay)."""

    unit: int
    is_write: bool
    data: bytes
    delay_s: float = 0.0
    """Time the board takes before it starts answering (0x8A boards pulse first, then reply)."""


@dataclass(slots=True)
class ModbusBoard:
    """A simulated Modbus board: its profile and its physics."""

    profile: str
    model: BoardModel


@dataclass(slots=True)
class ModbusRtuSlave:
    """All Modbus boards on one bus, answering by unit id."""

    boards: dict[int, ModbusBoard]
    pulse_log: list[tuple[float, int, int]] = field(default_factory=list)
    bad_frames: int = 0

    def target(self, frame: bytes) -> int | None:
        """Unit id a frame is addressed to (None when too short to say)."""
        return frame[0] if frame else None

    def split(self, data: bytes) -> list[bytes]:
        """Cut bytes that reached the sim together into whole frames (by length and CRC).

        A pty carries no timing: when the simulator thread is descheduled, two requests the
        master sent t3.5 apart arrive in one read. Only complete frames with a valid CRC are
        cut off; anything else stays one (bad) frame, so mixed-up bytes are still caught.
        """
        frames: list[bytes] = []
        rest = data
        while len(rest) >= 8:
            fc = rest[1]
            size = 9 + rest[6] if fc in (15, 16) and len(rest) >= 7 else 8
            if len(rest) <= size or crc16(rest[:size - 2]) != rest[size - 2:size]:
                break
            frames.append(rest[:size])
            rest = rest[size:]
        frames.append(rest)
        return frames

    def handle(self, frame: bytes, now: float) -> Reply | None:
        """Act on one complete frame (as delimited by line silence); None = stay silent."""
        if len(frame) < 4 or crc16(frame[:-2]) != frame[-2:]:
            self.bad_frames += 1
            return None
        unit, fc, data = frame[0], frame[1], frame[2:-2]
        board = self.boards.get(unit)
        if board is None:
            return None
        try:
            pdu = self._pdu(board, fc, data, now)
        except _ModbusException as exc:
            pdu = bytes([fc | 0x80, exc.code])
        return Reply(unit, fc in (5, 15), with_crc(bytes([unit]) + pdu))

    def _pdu(self, board: ModbusBoard, fc: int, data: bytes, now: float) -> bytes:
        model = board.model
        if fc in (1, 2):
            if len(data) != 4:
                raise _ModbusException(3)
            address, count = struct.unpack(">HH", data)
            if not 1 <= count <= 2000 or address + count > model.channels:
                raise _ModbusException(2)
            bits = model.relays(now) if fc == 1 else model.input_bits(now)
            payload = pack_bits(bits[address:address + count])
            return bytes([fc, len(payload)]) + payload
        if fc == 5:
            if len(data) != 4:
                raise _ModbusException(3)
            address, value = struct.unpack(">HH", data)
            self._write_coil(board, address, value, now)
            return bytes([fc]) + data
        if fc == 15:
            if len(data) < 5:
                raise _ModbusException(3)
            address, count, nbytes = struct.unpack(">HHB", data[:5])
            if nbytes != (count + 7) // 8 or len(data) != 5 + nbytes:
                raise _ModbusException(3)
            if address + count > model.channels:
                raise _ModbusException(2)
            for i in range(count):
                on = bool(data[5 + i // 8] >> (i % 8) & 1)
                model.set_relay(address + i, on, now)
                if on:
                    self.pulse_log.append((now, board.model.address, address + i))
            return bytes([fc]) + data[:4]
        raise _ModbusException(1)

    def _write_coil(self, board: ModbusBoard, address: int, value: int, now: float) -> None:
        model = board.model
        if address < model.channels:
            if value not in (0x0000, 0xFF00):
                raise _ModbusException(3)
            model.set_relay(address, value == 0xFF00, now)
            if value == 0xFF00:
                self.pulse_log.append((now, model.address, address))
            return
        if address == ALL_COILS and board.profile == "modbus-waveshare":
            if value != 0x0000:
                raise _ModbusException(3)
            for ch in range(model.channels):
                model.set_relay(ch, False, now)
            return
        ch = address - FLASH_BASE
        if board.profile == "modbus-waveshare" and 0 <= ch < model.channels:
            if not 1 <= value <= 0xFF:
                raise _ModbusException(3)
            model.energise(ch, value * 0.1, now)
            self.pulse_log.append((now, model.address, ch))
            return
        raise _ModbusException(2)


class _ModbusException(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
