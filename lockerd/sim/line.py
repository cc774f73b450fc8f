"""Simulated serial lines: pseudo-terminal pairs with the timing of a real RS-485 bus.

One thread serves every bus. Bytes the master writes are collected until the line has been
silent for t3.5 after the last character would have arrived (11 bits per character at the
configured baud rate), which is how an RTU slave delimits frames; the frame then goes to the
bus's protocol front end, and its reply is written back when its last character would have
left the wire. Replies can be dropped, corrupted or delayed by fault injection.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lockerd.sim.faults import Faults, ReplyFate
from lockerd.sim.modbus_rtu import Reply

log = logging.getLogger(__name__)

SLICE_S = 0.0002
"""Longest blind sleep of the simulator thread when a timer is due within a millisecond."""


def char_time(baudrate: int) -> float:
    """Seconds per character: start + 8 data + parity/stop = 11 bits (Modbus RTU)."""
    return 11.0 / baudrate


def t35(baudrate: int) -> float:
    """Inter-frame silence; fixed at 1.75 ms above 19200 baud (Modbus serial line spec)."""
    return 3.5 * char_time(baudrate) if baudrate <= 19200 else 0.00175


class FrontEnd(Protocol):
    """A wire protocol spoken by the boards on one bus."""

    def target(self, frame: bytes) -> int | None:
        """Board address a frame is for."""

    def handle(self, frame: bytes, now: float) -> Reply | None:
        """Act on a frame; the reply to send, or None."""

    def split(self, data: bytes) -> list[bytes]:
        """Whole frames in bytes that arrived together (the last item may be partial/bad)."""


@dataclass(slots=True)
class SimBus:
    """One simulated bus: a pty pair, its front end and what was seen on the wire."""

    name: str
    baudrate: int
    frontend: FrontEnd
    master_fd: int = -1
    slave_fd: int = -1
    path: str = ""
    rx_frames: list[tuple[float, bytes]] = field(default_factory=list)
    tx_frames: list[tuple[float, bytes]] = field(default_factory=list)
    collisions: int = 0
    _buf: bytearray = field(default_factory=bytearray)
    _first_rx: float = 0.0
    _busy_until: float = 0.0
    _gen: int = 0

    def open(self) -> None:
        """Create the pty pair in raw mode; the slave end is what a driver opens."""
        self.master_fd, self.slave_fd = os.openpty()
        tty.setraw(self.master_fd)
        tty.setraw(self.slave_fd)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self.slave_fd)

    def close(self) -> None:
        """Close both ends."""
        for fd in (self.master_fd, self.slave_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master_fd = self.slave_fd = -1


class LineEngine:
    """The simulator thread: reads requests, times frames, writes replies."""

    def __init__(self, buses: list[SimBus], faults: Faults,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buses = {b.name: b for b in buses}
        self.faults = faults
        self._clock = clock
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        # poll(2) takes whole milliseconds as given; the epoll selector rounds its float
        # timeout up twice and oversleeps by a millisecond (see `_wait`).
        self._selector = selectors.PollSelector()
        self._thread = threading.Thread(target=self._run, name="sim-line", daemon=False)
        self._lock = threading.Lock()

    def start(self) -> None:
        """Open every pty and start the thread."""
        for bus in self.buses.values():
            bus.open()
            self._selector.register(bus.master_fd, selectors.EVENT_READ, bus)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and close the ptys."""
        self._stop.set()
        self.wake()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._selector.close()
        for bus in self.buses.values():
            bus.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def wake(self) -> None:
        """Make the thread look at fault switches (e.g. injected noise) now."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (when, next(self._seq), action))

    def _wait(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait for input or the timeout, keeping timers to a fraction of a millisecond.

        poll(2) waits whole milliseconds (epoll's float timeout was rounded up twice and made
        every emulated frame end about 1 ms late); the sub-millisecond rest is waited in
        short sleeps, input looked at between them, so a byte is stamped at most SLICE_S late.
        """
        whole_ms = int(timeout * 1000)
        if whole_ms > 0:
            # just under N ms, so that float error cannot make epoll round it up to N + 1
            return self._selector.select(whole_ms / 1000 - 1e-6)
        events = self._selector.select(0)
        if not events and timeout > 0:
            time.sleep(min(timeout, SLICE_S))
        return events

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            timeout = 0.05
            if self._timers:
                timeout = max(0.0, min(timeout, self._timers[0][0] - now))
            for key, _ in self._wait(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        os.read(self._wake_r, 4096)
                    continue
                self._on_readable(key.data)
            now = self._clock()
            while self._timers and self._timers[0][0] <= now:
                _, _, action = heapq.heappop(self._timers)
                try:
                    action()
                except Exception:
                    log.exception("simulator action failed")
            for bus in self.buses.values():
                noise = self.faults.take_garbage(bus.name)
                if noise:
                    self._write(bus, noise)

    def _on_readable(self, bus: SimBus) -> None:
        try:
            data = os.read(bus.master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        now = self._clock()
        if now < bus._busy_until:
            bus.collisions += 1
            log.warning("sim %s: master talked while a slave was transmitting", bus.name)
        if bus._buf and now >= self._frame_end(bus):
            # The line was silent for t3.5 before these bytes (the timer just ran late on a
            # busy machine): what was buffered is a frame of its own.
            data_before = bytes(bus._buf)
            bus._buf.clear()
            bus._gen += 1
            for frame in bus.frontend.split(data_before):
                self._process(bus, frame)
        if not bus._buf:
            bus._first_rx = now
        bus._buf.extend(data)
        bus._gen += 1
        self._schedule_end_of_frame(bus)

    def _frame_end(self, bus: SimBus) -> float:
        return bus._first_rx + len(bus._buf) * char_time(bus.baudrate) + t35(bus.baudrate)

    def _schedule_end_of_frame(self, bus: SimBus) -> None:
        gen = bus._gen

        def check() -> None:
            if bus._gen != gen or not bus._buf:
                return  # more bytes came; a later check owns the frame
            data = bytes(bus._buf)
            bus._buf.clear()
            for frame in bus.frontend.split(data):
                self._process(bus, frame)

        self._at(self._frame_end(bus), check)

    def _process(self, bus: SimBus, frame: bytes) -> None:
        now = self._clock()
        bus.rx_frames.append((now, frame))
        unit = bus.frontend.target(frame)
        if unit is not None and unit in self._addresses(bus) and self.faults.is_unplugged(
                bus.name, unit):
            return
        reply = bus.frontend.handle(frame, now)
        if reply is None:
            return
        fate, delay = self.faults.reply_fate(bus.name, reply.unit, reply.is_write)
        if fate is ReplyFate.DROP:
            return
        data = reply.data
        if fate is ReplyFate.CORRUPT:
            data = data[:-1] + bytes([data[-1] ^ 0x5A])
        elif fate is ReplyFate.TRUNCATE:
            data = data[:max(1, len(data) // 2)]
        done = now + len(data) * char_time(bus.baudrate) + delay + reply.delay_s
        if fate is not ReplyFate.LATE:
            bus._busy_until = done
        self._at(done, lambda: self._write(bus, data))

    def _addresses(self, bus: SimBus) -> set[int]:
        boards = getattr(bus.frontend, "boards", {})
        return set(boards)

    def _write(self, bus: SimBus, data: bytes) -> None:
        bus.tx_frames.append((self._clock(), data))
        try:
            os.write(bus.master_fd, data)
        except OSError as exc:
            log.debug("sim %s: reply not delivered: %s", bus.name, exc)
