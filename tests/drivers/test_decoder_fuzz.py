"""Hypothesis: random byte streams, split and concatenated frames and noise never break the decoders.

No exception escapes `feed()`, no frame with a wrong checksum is ever returned, and valid
frames separated by noise (without header bytes) come out exactly once, in order, however
the stream is cut into reads.
"""

from __future__ import annotations

from functools import reduce

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockerd.drivers import frames_8a as f8
from lockerd.drivers import frames_kerong as fk
from lockerd.drivers.framing import StreamDecoder

FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STREAMS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return out


def feed_all(decoder: StreamDecoder[object], parts: list[bytes]) -> list[object]:
    found: list[object] = []
    for part in parts:
        found.extend(decoder.feed(part))
    return found


def kerong_sum_ok(raw: bytes) -> bool:
    return sum(raw[:-1]) & 0xFF == raw[-1] and raw[0] == 0x02 and raw[-2] == 0x03


def bcc_ok(raw: bytes) -> bool:
    return reduce(lambda a, b: a ^ b, raw[:-1], 0) == raw[-1]


kerong_frames = st.one_of(
    st.builds(fk.encode_open, st.integers(0, 15), st.integers(1, 16)),
    st.builds(fk.encode_read, st.integers(0, 15)),
    st.builds(fk.encode_status, st.integers(0, 15), st.lists(st.booleans(), min_size=16, max_size=16),
              st.lists(st.booleans(), min_size=16, max_size=16)),
)
N_BYTES = 3
f8_frames = st.one_of(
    st.builds(f8.encode_open, st.integers(0, 255), st.integers(1, 56)),
    st.builds(f8.encode_open_reply, st.integers(0, 255), st.integers(1, 56), st.booleans()),
    st.builds(lambda b, bits: f8.encode_read_reply(b, bits, N_BYTES), st.integers(0, 255),
              st.lists(st.booleans(), min_size=24, max_size=24)),
)


def mixed(frames: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Pure noise, or valid frames mixed with noise that may hold header bytes and half frames."""
    return st.one_of(st.binary(max_size=300),
                     st.lists(st.one_of(frames, st.binary(max_size=8),
                                        frames.map(lambda f: f[:len(f) // 2])),
                              max_size=12).map(b"".join))


@FUZZ
@given(mixed(kerong_frames), st.lists(st.integers(0, 400), max_size=8))
def test_kerong_random_bytes_never_raise_or_pass_a_bad_sum(data: bytes, cuts: list[int]) -> None:
    decoder = fk.KerongDecoder()
    for frame in feed_all(decoder, chunks(data, cuts)):
        assert isinstance(frame, fk.KerongFrame)
        raw = frame.encode()
        assert kerong_sum_ok(raw)
        assert len(raw) == fk.LENGTHS[frame.cmd]
        assert raw in data


@FUZZ
@given(mixed(f8_frames), st.lists(st.integers(0, 400), max_size=8), st.integers(1, 7))
def test_8a_random_bytes_never_raise_or_pass_a_bad_bcc(data: bytes, cuts: list[int], n: int) -> None:
    decoder = f8.Decoder8A(n)
    for frame in feed_all(decoder, chunks(data, cuts)):
        assert isinstance(frame, f8.Frame8A)
        raw = frame.encode()
        assert bcc_ok(raw)
        assert raw in data


def _stream(frames: list[bytes], noise: list[bytes]) -> bytes:
    out = b""
    for i, frame in enumerate(frames):
        out += noise[i % len(noise)] if noise else b""
        out += frame
    return out


@STREAMS
@given(st.lists(kerong_frames, max_size=8),
       st.lists(st.binary(max_size=12).map(lambda b: bytes(x for x in b if x != fk.STX)), max_size=4),
       st.lists(st.integers(0, 400), max_size=10))
def test_kerong_split_and_concatenated_frames_all_recovered(frames: list[bytes], noise: list[bytes],
                                                            cuts: list[int]) -> None:
    decoder = fk.KerongDecoder()
    found = feed_all(decoder, chunks(_stream(frames, noise), cuts))
    assert [f.encode() for f in found if isinstance(f, fk.KerongFrame)] == frames


@STREAMS
@given(st.lists(f8_frames, max_size=8),
       st.lists(st.binary(max_size=12).map(lambda b: bytes(x for x in b if x not in (0x80, 0x8A))),
                max_size=4),
       st.lists(st.integers(0, 400), max_size=10))
def test_8a_split_and_concatenated_frames_all_recovered(frames: list[bytes], noise: list[bytes],
                                                        cuts: list[int]) -> None:
    decoder = f8.Decoder8A(N_BYTES)
    found = feed_all(decoder, chunks(_stream(frames, noise), cuts))
    assert [f.encode() for f in found if isinstance(f, f8.Frame8A)] == frames


@STREAMS
@given(kerong_frames, st.integers(1, 255), st.data())
def test_kerong_corrupted_frame_is_dropped_and_counted(frame: bytes, flip: int, data: st.DataObject) -> None:
    pos = data.draw(st.integers(3, len(frame) - 1))  # data, ETX or checksum byte
    bad = bytearray(frame)
    bad[pos] ^= flip
    decoder = fk.KerongDecoder()
    found = decoder.feed(bytes(bad))
    assert not found
    assert decoder.bad_frames >= 1 or decoder.pending


@STREAMS
@given(f8_frames, st.integers(1, 255), st.data())
def test_8a_corrupted_frame_is_dropped_and_counted(frame: bytes, flip: int, data: st.DataObject) -> None:
    pos = data.draw(st.integers(2, len(frame) - 1))
    bad = bytearray(frame)
    bad[pos] ^= flip
    decoder = f8.Decoder8A(N_BYTES)
    found = decoder.feed(bytes(bad))
    assert not found
    assert decoder.bad_frames >= 1 or decoder.pending


@STREAMS
@given(st.lists(kerong_frames, max_size=6), st.binary(max_size=10))
def test_split_stream_cuts_whole_frames_and_keeps_leftovers(frames: list[bytes], tail: bytes) -> None:
    from lockerd.drivers.framing import split_stream
    tail = bytes(b for b in tail if b != fk.STX)
    parts = split_stream(b"".join(frames) + tail, fk.KerongDecoder())
    assert parts[:len(frames)] == frames
    assert parts[len(frames):] == ([tail] if tail else [])
