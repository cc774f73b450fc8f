"""Golden vectors of docs/boards.md for Kerong and 0x8A frames: encode, decode, checksum, echo rejects."""

from __future__ import annotations

import pytest

from lockerd.drivers import frames_8a as f8
from lockerd.drivers import frames_kerong as fk
from lockerd.drivers.errors import FrameError

H = bytes.fromhex


# Kerong CU16

def test_kerong_open_board0_lock1_is_golden() -> None:
    assert fk.encode_open(0, 1) == H("02 00 31 03 36")


def test_kerong_read_board0_is_golden() -> None:
    assert fk.encode_read(0) == H("02 00 30 03 35")


def test_kerong_address_is_board_high_nibble_lock_low_nibble() -> None:
    frame = fk.encode_open(3, 12)
    assert frame[1] == 0x3B
    assert frame[-1] == (0x02 + 0x3B + 0x31 + 0x03) & 0xFF
    decoded = fk.decode(frame)
    assert (decoded.board, decoded.lock, decoded.cmd) == (3, 12, fk.CMD_OPEN)


def test_kerong_status_reply_decodes_hooks_and_infrared() -> None:
    # Board 0: locks 1 and 9 open (D1 bit 0, D2 bit 0), item seen in lock 2 and 16.
    raw = H("02 00 35 01 01 02 80 03") + bytes([(0x02 + 0x35 + 0x01 + 0x01 + 0x02 + 0x80 + 0x03) & 0xFF])
    status = fk.parse_status(fk.decode(raw), 0)
    assert [i + 1 for i, b in enumerate(status.hooks) if b] == [1, 9]
    assert [i + 1 for i, b in enumerate(status.occupied) if b] == [2, 16]
    assert fk.encode_status(0, status.hooks, status.occupied) == raw
    assert len(raw) == 9


@pytest.mark.parametrize("raw", [
    H("02 00 31 03 37"),            # checksum off by one
    H("02 00 30 03 36"),            # read with the open's checksum
    H("02 00 31 04 37"),            # no ETX (checksum recomputed)
    H("03 00 31 03 37"),            # wrong header
    H("02 00 31 03"),               # truncated
    H("02 00 35 00 00 00 00 03 3A 00"),  # too long
    H("02 00 77 03 7C"),            # unknown command, valid sum
])
def test_kerong_rejects_bad_frames(raw: bytes) -> None:
    with pytest.raises(FrameError):
        fk.decode(raw)


def test_kerong_echo_mismatch_is_rejected() -> None:
    echo = fk.decode(fk.encode_open(0, 2))
    fk.check_open_reply(echo, 0, 2)
    with pytest.raises(FrameError):
        fk.check_open_reply(echo, 0, 1)          # other lock
    with pytest.raises(FrameError):
        fk.check_open_reply(fk.decode(fk.encode_open(1, 2)), 0, 2)  # other board
    status = fk.decode(fk.encode_status(2, [False] * 16, [False] * 16))
    with pytest.raises(FrameError):
        fk.parse_status(status, 1)               # status of another board
    with pytest.raises(FrameError):
        fk.parse_status(echo, 0)                 # an open echo is not a status


def test_kerong_limits() -> None:
    with pytest.raises(ValueError, match="board"):
        fk.encode_open(16, 1)
    with pytest.raises(ValueError, match="lock"):
        fk.encode_open(0, 17)


# 0x8A boards

def test_8a_open_board1_lock1_is_golden() -> None:
    assert f8.encode_open(1, 1) == H("8A 01 01 11 9B")


def test_8a_read_board1_is_golden() -> None:
    assert f8.encode_read(1) == H("80 01 00 33 B2")


def test_8a_open_reply_decodes_status_and_echo() -> None:
    reply = f8.decode(H("8A 01 01 11 9B"))
    assert f8.check_open_reply(reply, 1, 1) is True
    closed = f8.encode_open_reply(1, 1, lock_open=False)
    assert closed == H("8A 01 01 00 8A")
    assert f8.check_open_reply(f8.decode(closed), 1, 1) is False


def test_8a_read_reply_sn_to_s1_order() -> None:
    # 16 channels: S2 S1; lock 1 (S1 bit 0) and lock 10 (S2 bit 1) open.
    raw = f8.encode_read_reply(1, [True] + [False] * 8 + [True] + [False] * 6, 2)
    assert raw == H("80 01 02 01 33") + bytes([0x80 ^ 0x01 ^ 0x02 ^ 0x01 ^ 0x33])
    bits = f8.parse_read_reply(f8.decode(raw, 2), 1, 16)
    assert [i + 1 for i, b in enumerate(bits) if b] == [1, 10]
    assert f8.state_bytes(50) == 7


@pytest.mark.parametrize(("raw", "n"), [
    (H("8A 01 01 11 9A"), 1),        # BCC off by one
    (H("80 01 00 33 B3"), 1),        # read BCC wrong
    (H("80 01 00 34 B5"), 1),        # no 0x33 trailer (BCC recomputed)
    (H("8A 01 01 22 A8"), 1),        # unknown status byte
    (H("8A 01 01 11"), 1),           # truncated
    (H("80 01 00 33 B2"), 2),        # read reply shorter than the board's state bytes
])
def test_8a_rejects_bad_frames(raw: bytes, n: int) -> None:
    with pytest.raises(FrameError):
        f8.decode(raw, n)


def test_8a_echo_mismatch_is_rejected() -> None:
    reply = f8.decode(H("8A 01 01 11 9B"))
    with pytest.raises(FrameError):
        f8.check_open_reply(reply, 1, 2)         # other lock
    with pytest.raises(FrameError):
        f8.check_open_reply(reply, 2, 1)         # other board
    read = f8.decode(f8.encode_read_reply(2, [False] * 8, 1))
    with pytest.raises(FrameError):
        f8.parse_read_reply(read, 1, 8)          # other board
    with pytest.raises(FrameError):
        f8.parse_read_reply(read, 2, 16)         # wrong number of state bytes
    with pytest.raises(FrameError):
        f8.check_open_reply(read, 2, 1)          # a read reply is not an open reply
