"""Kerong CU16 (`kerong-cu16`) frames as pure functions: encode, decode, checksum, echo checks.

Wire format (docs/boards.md): `02 ADDR CMD 03 SUM`, SUM = low byte of the sum of the bytes
before it, ADDR = board << 4 | (lock - 1), 19200 8N1.
- open lock:  CMD 0x31, e.g. board 0 lock 1 `02 00 31 03 36`; the board answers with the same
  five bytes (its echo carries board and lock, and is checked against the request).
- read board: CMD 0x30 with ADDR = board << 4, e.g. `02 00 30 03 35`; the board answers
  `02 ADDR 35 D1 D2 D3 D4 03 SUM`: D1-D2 hook (door) bits of locks 1-16, D3-D4 infrared
  occupancy bits. D1 bit 0 is lock 1, D1 bit 7 lock 8, D2 bit 0 lock 9 (same for D3/D4).
"""

from __future__ import annotations

from dataclasses import dataclass

from lockerd.drivers.errors import FrameError
from lockerd.drivers.framing import StreamDecoder

STX = 0x02
ETX = 0x03
CMD_READ = 0x30
CMD_OPEN = 0x31
CMD_STATUS = 0x35
MAX_BOARD = 15
MAX_LOCKS = 16
LENGTHS = {CMD_READ: 5, CMD_OPEN: 5, CMD_STATUS: 9}
"""Frame length by command byte; any other command is not a Kerong frame."""


def checksum(body: bytes) -> int:
    """SUM: the low byte of the byte sum."""
    return sum(body) & 0xFF


def _frame(addr: int, cmd: int, data: bytes = b"") -> bytes:
    body = bytes([STX, addr, cmd]) + data + bytes([ETX])
    return body + bytes([checksum(body)])


def address_byte(board: int, lock: int = 1) -> int:
    """ADDR = board << 4 | (lock - 1); board 0-15, lock 1-16."""
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"Kerong board address {board} is outside 0-{MAX_BOARD}")
    if not 1 <= lock <= MAX_LOCKS:
        raise ValueError(f"Kerong lock {lock} is outside 1-{MAX_LOCKS}")
    return board << 4 | (lock - 1)


def encode_open(board: int, lock: int) -> bytes:
    """Open one lock (the board times the pulse itself)."""
    return _frame(address_byte(board, lock), CMD_OPEN)


def encode_read(board: int) -> bytes:
    """Read hook and infrared bits of all 16 locks."""
    return _frame(address_byte(board), CMD_READ)


def _bits(lo: int, hi: int) -> tuple[bool, ...]:
    word = lo | hi << 8
    return tuple(bool(word >> i & 1) for i in range(MAX_LOCKS))


def _byte_pair(bits: tuple[bool, ...] | list[bool]) -> bytes:
    word = sum(1 << i for i, bit in enumerate(bits[:MAX_LOCKS]) if bit)
    return bytes([word & 0xFF, word >> 8])


def encode_status(board: int, hooks: list[bool] | tuple[bool, ...],
                  occupied: list[bool] | tuple[bool, ...]) -> bytes:
    """The board's reply to a read (used by the simulator and the golden tests)."""
    return _frame(address_byte(board), CMD_STATUS, _byte_pair(hooks) + _byte_pair(occupied))


@dataclass(frozen=True, slots=True)
class KerongFrame:
    """One validated frame."""

    addr: int
    cmd: int
    data: bytes = b""

    @property
    def board(self) -> int:
        """Board address (high nibble of ADDR)."""
        return self.addr >> 4

    @property
    def lock(self) -> int:
        """Lock number 1-16 (low nibble of ADDR, plus one)."""
        return (self.addr & 0x0F) + 1

    def encode(self) -> bytes:
        """The frame's bytes on the wire."""
        return _frame(self.addr, self.cmd, self.data)


@dataclass(frozen=True, slots=True)
class KerongStatus:
    """A decoded read reply: door hook bits and infrared occupancy bits of locks 1-16."""

    board: int
    hooks: tuple[bool, ...]
    occupied: tuple[bool, ...]


def decode(raw: bytes) -> KerongFrame:
    """Validate header, length, trailer and checksum of one complete frame."""
    if len(raw) < 5 or raw[0] != STX:
        raise FrameError(f"kerong: not a frame: {raw.hex(' ')}")
    expected = LENGTHS.get(raw[2])
    if expected is None:
        raise FrameError(f"kerong: unknown command {raw[2]:#04x}")
    if len(raw) != expected:
        raise FrameError(f"kerong: command {raw[2]:#04x} is {expected} bytes, got {len(raw)}")
    if raw[-2] != ETX:
        raise FrameError(f"kerong: no ETX: {raw.hex(' ')}")
    if checksum(raw[:-1]) != raw[-1]:
        raise FrameError(f"kerong: bad checksum {raw[-1]:#04x}, want {checksum(raw[:-1]):#04x}")
    return KerongFrame(raw[1], raw[2], bytes(raw[3:-2]))


def check_open_reply(frame: KerongFrame, board: int, lock: int) -> None:
    """The open acknowledgement must echo this board and lock."""
    if frame.cmd != CMD_OPEN or frame.addr != address_byte(board, lock):
        raise FrameError(f"kerong: open echo {frame.encode().hex(' ')} is not for board "
                         f"{board} lock {lock}")


def parse_status(frame: KerongFrame, board: int) -> KerongStatus:
    """Bits of a read reply; it must be a status frame from this board."""
    if frame.cmd != CMD_STATUS or frame.addr != address_byte(board):
        raise FrameError(f"kerong: {frame.encode().hex(' ')} is not a status reply of board {board}")
    d = frame.data
    return KerongStatus(board, _bits(d[0], d[1]), _bits(d[2], d[3]))


class KerongDecoder(StreamDecoder[KerongFrame]):
    """Finds Kerong frames in a byte stream (requests and replies alike)."""

    headers = frozenset({STX})

    def frame_length(self, buf: bytearray) -> int | None:
        """Length from the command byte (third byte)."""
        if len(buf) < 3:
            return None
        return LENGTHS.get(buf[2], 0)

    def decode(self, raw: bytes) -> KerongFrame:
        """See `decode()`."""
        return decode(raw)
