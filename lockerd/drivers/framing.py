"""Streaming frame decoder shared by the short proprietary lock-board protocols (Kerong, 0x8A).

Bytes arrive from the line in arbitrary pieces: a reply may be split over several reads, two
replies may come in one read, and noise or a late reply may sit in front. The decoder looks for
a header byte, asks the protocol how long the frame is, validates it (checksum, trailer, known
command) and either emits it or drops one byte and searches again. A bad frame is counted and
dropped, never returned, so nothing is ever acted on without a valid checksum.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

from lockerd.drivers.errors import FrameError

T = TypeVar("T")

MAX_BUFFER = 4096
"""Bytes kept while waiting for the rest of a frame; more means the line is flooding us."""


class StreamDecoder(ABC, Generic[T]):
    """Resynchronising decoder: `feed()` bytes, get the valid frames found so far."""

    headers: frozenset[int] = frozenset()

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.bad_frames = 0
        self.noise_bytes = 0

    @abstractmethod
    def frame_length(self, buf: bytearray) -> int | None:
        """Length of the frame starting at buf[0] (a header byte); None = need more bytes, 0 = invalid."""

    @abstractmethod
    def decode(self, raw: bytes) -> T:
        """Validate one candidate frame of the announced length; raise FrameError when bad."""

    @property
    def pending(self) -> int:
        """Bytes buffered that are not yet a frame (a truncated frame, or noise)."""
        return len(self._buf)

    def reset(self) -> None:
        """Forget buffered bytes (after the line was flushed)."""
        self.noise_bytes += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> list[T]:
        """Add received bytes; returns every complete valid frame, in order."""
        self._buf += data
        out: list[T] = []
        buf = self._buf
        while buf:
            start = next((i for i, b in enumerate(buf) if b in self.headers), None)
            if start is None:
                self.noise_bytes += len(buf)
                buf.clear()
                break
            if start:
                self.noise_bytes += start
                del buf[:start]
            length = self.frame_length(buf)
            if length is None:
                break
            if length == 0:
                self.bad_frames += 1
                del buf[:1]
                continue
            if len(buf) < length:
                break
            raw = bytes(buf[:length])
            try:
                frame = self.decode(raw)
            except FrameError:
                self.bad_frames += 1
                del buf[:1]
                continue
            del buf[:length]
            self.frames += 1
            out.append(frame)
        if len(buf) > MAX_BUFFER:
            self.noise_bytes += len(buf)
            buf.clear()
        return out


def split_stream(data: bytes, decoder: StreamDecoder[Any]) -> list[bytes]:
    """Cut bytes into the valid frames found in them, plus one trailing item of everything else.

    Used by the simulator when two requests reach it in one read: each whole frame is handled
    on its own and leftover bytes are still seen (and counted) as one bad frame.
    """
    frames: list[bytes] = []
    rest = bytearray()
    pos = 0
    for frame in decoder.feed(data):
        raw = frame.encode()
        at = data.find(raw, pos)
        rest += data[pos:at]
        frames.append(raw)
        pos = at + len(raw)
    rest += data[pos:]
    if rest:
        frames.append(bytes(rest))
    return frames
