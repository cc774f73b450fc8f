"""Generic 8-50 channel "0x8A" boards (`rs485-8a`) as pure functions: encode, decode, BCC, echo checks.

Wire format (docs/boards.md), 9600 8N1, BCC = XOR of every byte before it:
- open lock:  `8A BRD LOCK 11 BCC` (board 1 lock 1: `8A 01 01 11 9B`); after the pulse (about
  500 ms) the board answers `8A BRD LOCK ST BCC`, ST = 0x11 lock open, 0x00 lock still closed.
- read board: `80 BRD 00 33 BCC` (`80 01 00 33 B2`); answer `80 BRD Sn..S1 33 BCC` with
  n = ceil(channels / 8) state bytes, most significant first: S1 (the last) bit 0 is lock 1.
The reply length of a read depends on the board's channel count, so a decoder is built for
the number of state bytes it expects (one for the 5-byte request frames the simulator reads).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from lockerd.drivers.errors import FrameError
from lockerd.drivers.framing import StreamDecoder

OPEN = 0x8A
READ = 0x80
CMD_OPEN = 0x11
CMD_READ = 0x33
ST_OPEN = 0x11
ST_CLOSED = 0x00
MAX_LOCKS = 56
"""Seven state bytes; boards are sold with 8 to 50 channels."""
MAX_BOARD = 0xFF
"""The board address is one byte."""


def bcc(data: bytes) -> int:
    """XOR block check over the bytes given."""
    return reduce(lambda a, b: a ^ b, data, 0)


def _frame(body: bytes) -> bytes:
    return body + bytes([bcc(body)])


def state_bytes(channels: int) -> int:
    """Number of state bytes a board with this many channels sends."""
    if not 1 <= channels <= MAX_LOCKS:
        raise ValueError(f"0x8A board with {channels} channels (1-{MAX_LOCKS})")
    return (channels + 7) // 8


def _check_board(board: int) -> None:
    if not 0 <= board <= MAX_BOARD:
        raise ValueError(f"0x8A board address {board} is outside 0-{MAX_BOARD}")


def encode_open(board: int, lock: int) -> bytes:
    """Open one lock (1-based)."""
    _check_board(board)
    if not 1 <= lock <= MAX_LOCKS:
        raise ValueError(f"0x8A lock {lock} is outside 1-{MAX_LOCKS}")
    return _frame(bytes([OPEN, board, lock, CMD_OPEN]))


def encode_open_reply(board: int, lock: int, lock_open: bool) -> bytes:
    """The board's answer to an open (simulator and golden tests)."""
    _check_board(board)
    return _frame(bytes([OPEN, board, lock, ST_OPEN if lock_open else ST_CLOSED]))


def encode_read(board: int) -> bytes:
    """Read every lock of a board."""
    _check_board(board)
    return _frame(bytes([READ, board, 0x00, CMD_READ]))


def encode_read_reply(board: int, bits: list[bool] | tuple[bool, ...], n_bytes: int) -> bytes:
    """The board's answer to a read: Sn..S1, lock 1 in bit 0 of S1 (the last state byte)."""
    _check_board(board)
    word = sum(1 << i for i, bit in enumerate(bits) if bit)
    return _frame(bytes([READ, board]) + word.to_bytes(n_bytes, "big") + bytes([CMD_READ]))


@dataclass(frozen=True, slots=True)
class Frame8A:
    """One validated frame: header (0x8A or 0x80), board, payload between board and BCC."""

    header: int
    board: int
    payload: bytes

    def encode(self) -> bytes:
        """The frame's bytes on the wire."""
        return _frame(bytes([self.header, self.board]) + self.payload)


def decode(raw: bytes, n_bytes: int = 1) -> Frame8A:
    """Validate header, length, command/trailer byte and BCC of one complete frame.

    `n_bytes` is the number of state bytes a read reply carries (1 also fits the read request).
    """
    if not raw or raw[0] not in (OPEN, READ):
        raise FrameError(f"0x8A: not a frame: {raw.hex(' ')}")
    expected = 5 if raw[0] == OPEN else 4 + n_bytes
    if len(raw) != expected:
        raise FrameError(f"0x8A: header {raw[0]:#04x} frame is {expected} bytes, got {len(raw)}")
    if bcc(raw[:-1]) != raw[-1]:
        raise FrameError(f"0x8A: bad BCC {raw[-1]:#04x}, want {bcc(raw[:-1]):#04x}")
    if raw[0] == READ and raw[-2] != CMD_READ:
        raise FrameError(f"0x8A: read frame without 0x33: {raw.hex(' ')}")
    if raw[0] == OPEN and raw[3] not in (CMD_OPEN, ST_CLOSED):
        raise FrameError(f"0x8A: unknown open status {raw[3]:#04x}")
    return Frame8A(raw[0], raw[1], bytes(raw[2:-1]))


def check_open_reply(frame: Frame8A, board: int, lock: int) -> bool:
    """Validate the echo of an open; returns True when the board reports the lock open."""
    if frame.header != OPEN or frame.board != board or frame.payload[0] != lock:
        raise FrameError(f"0x8A: open reply {frame.encode().hex(' ')} is not for board {board} "
                         f"lock {lock}")
    return frame.payload[1] == ST_OPEN


def parse_read_reply(frame: Frame8A, board: int, channels: int) -> tuple[bool, ...]:
    """Door bits of locks 1..channels; the frame must be a read reply of this board."""
    n = state_bytes(channels)
    if frame.header != READ or frame.board != board or len(frame.payload) != n + 1:
        raise FrameError(f"0x8A: {frame.encode().hex(' ')} is not a read reply of board {board}")
    word = int.from_bytes(frame.payload[:n], "big")
    return tuple(bool(word >> i & 1) for i in range(channels))


class Decoder8A(StreamDecoder[Frame8A]):
    """Finds 0x8A/0x80 frames in a byte stream; read frames carry `n_bytes` state bytes."""

    headers = frozenset({OPEN, READ})

    def __init__(self, n_bytes: int = 1) -> None:
        super().__init__()
        if not 1 <= n_bytes <= 7:
            raise ValueError("0x8A read frames carry 1-7 state bytes")
        self.n_bytes = n_bytes

    def frame_length(self, buf: bytearray) -> int | None:
        """Fixed by the header byte."""
        return 5 if buf[0] == OPEN else 4 + self.n_bytes

    def decode(self, raw: bytes) -> Frame8A:
        """See `decode()`."""
        return decode(raw, self.n_bytes)
