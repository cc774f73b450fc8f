"""The Modbus door poll (FC02) sent raw on the bus's port: awaited, or sent now and read later.

An awaited poll (`read_inputs`) runs inside the line's scheduler like any exchange: request out,
then the loop wakes when the reply arrives. An idle cabinet polls all day (96 doors: 24 polls a
second), and on a small machine each event-loop wake-up costs about as much as all the Python
of a poll, so the idle poll has a second form that needs no wake-up of its own (`send`,
`harvest`, `finish`): the door controller's bus round (doors/bus_round.py) sends a board's
request while the line is free, the port is not watched meanwhile (the reply's arrival wakes
nobody; it is watched again only for an exchange that waits for its reply or settles the line),
and at its next slot (tens of milliseconds later, when the reply has long arrived) it
reads the reply with one non-blocking read before sending the next board's request. Frames
still never interleave and the gap is kept: the poll in flight is the scheduler's `pending`,
which every transaction finishes (reads the reply, or waits for it up to the read timeout)
before it sends anything; a reply that is incomplete at the harvest is awaited the ordinary
way; a timeout or garbage marks the line dirty as for any exchange.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import serial

from lockerd.drivers.bus import Priority, char_time
from lockerd.drivers.errors import DriverError, DriverTimeout, DriverUnavailable, FrameError
from lockerd.drivers.frames_modbus import (
    find_read_inputs_reply,
    read_inputs_reply_len,
    read_inputs_request,
)
from lockerd.drivers.modbus_tap import RawTap

if TYPE_CHECKING:
    from lockerd.drivers.lockboard_modbus import ModbusBus

log = logging.getLogger(__name__)

PollResult: TypeAlias = "tuple[bool, ...] | DriverError"
"""What a poll read later delivers: the inputs, or why there are none."""
SPANS_KEPT = 8
"""Awaited polls whose request-to-reply time tells when a harvested reply ended (for the gap)."""


@dataclass(eq=False, slots=True)
class InFlight:
    """A poll sent outside a transaction whose reply has not been read yet."""

    unit: int
    count: int
    sent: float
    deliver: Callable[[PollResult], None]
    finishing: asyncio.Future[None] | None = None


class RawPolls:
    """FC02 polls of one `ModbusBus`, on the port pymodbus opened, past pymodbus's client."""

    def __init__(self, bus: ModbusBus) -> None:
        self._bus = bus
        self._requests: dict[tuple[int, int], bytes] = {}
        self._flight: InFlight | None = None
        self._spans: deque[float] = deque(maxlen=SPANS_KEPT)
        self._wire: dict[tuple[int, int], float] = {}
        self._min_interval: float | None = None
        self._last: dict[int, tuple[bytes, tuple[bool, ...]]] = {}
        self._span: float | None = None
        self._unwatched: Any = None
        """The port while the loop does not watch it (since the last poll sent to be read later)."""
        self.sent_later = 0
        """Polls sent to be read later (status, tests)."""
        self.harvested = 0
        """Of those, replies read by one non-blocking read, without waiting."""
        self.port_reads = 0
        """Non-blocking reads made to harvest a reply (tests: one per harvested poll)."""

    def min_interval(self) -> float:
        """Shortest time from one poll sent to be read later to the next: the request-to-reply
        time, two gaps and a timer's rounding (a round whose slots are shorter would find every
        reply still arriving, and wait for each)."""
        if self._min_interval is None:
            wire = (8 + read_inputs_reply_len(8)) * char_time(self._bus.baudrate)
            self._min_interval = (1.1 * max(self._reply_span(), wire)
                                  + 2 * self._bus.scheduler.gap_s + 0.001)
        return self._min_interval

    def _reply_span(self) -> float:
        """The request-to-reply time of this line: the shortest of the recent awaited polls.
        Not the longest: a waiting poll measures the loop's lateness too, and one late wake-up
        (a busy machine) must not stretch every slot or gap for good."""
        if self._span is None:
            self._span = min(self._spans, default=0.0)
        return self._span

    def _took(self, span: float) -> None:
        """An awaited poll's request-to-reply time (the gap after a reply read late; slots)."""
        self._spans.append(span)
        self._min_interval = self._span = None

    @property
    def in_flight(self) -> bool:
        """A poll's reply is still to be read."""
        return self._flight is not None

    def _request(self, unit: int, count: int) -> bytes:
        request = self._requests.get((unit, count))
        if request is None:
            request = self._requests[(unit, count)] = read_inputs_request(unit, count)
        return request

    # Awaited

    async def read_inputs(self, unit: int, count: int, *, timeout_s: float,
                          attempts: int) -> tuple[bool, ...]:
        """FC02 inputs 0..count-1 of `unit` inside a transaction (the door poll; idempotent)."""
        request = self._request(unit, count)
        return await self._bus._transaction(
            Priority.POLL, attempts, lambda: self._read_once(request, unit, count, timeout_s))

    async def _read_once(self, request: bytes, unit: int, count: int,
                         timeout_s: float) -> tuple[bool, ...]:
        bus = self._bus
        if not bus.client.connected:
            await bus.open()
        tap = bus._install_tap()
        self.watch()
        self._drop_stale(tap)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        self._write(request)
        bits = await self._await_reply(tap, unit, count, sent + timeout_s, timeout_s)
        self._took(loop.time() - sent)
        return bits

    async def _await_reply(self, tap: RawTap, unit: int, count: int, deadline: float,
                           timeout_s: float) -> tuple[bool, ...]:
        """Wait (port watched) until the reply to `unit` is in the tap's buffer, or `deadline`."""
        bus = self._bus
        loop = asyncio.get_running_loop()
        while True:
            if tap.buf:
                try:
                    bits = self._parse(bytes(tap.buf), unit, count)
                except DriverError as exc:  # the board's exception reply
                    tap.buf.clear()
                    raise DriverError(f"bus {bus.name} {exc}") from None
                if bits is not None:
                    tap.buf.clear()
                    return bits
            if tap.lost or not bus.client.connected:
                raise DriverUnavailable(f"bus {bus.name}: port closed")
            if loop.time() >= deadline:
                break
            waiter: asyncio.Future[None] = loop.create_future()
            tap.waiter = waiter
            timer = loop.call_at(deadline, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                tap.waiter = None
        if tap.buf:
            bus.garbled += 1
            raise FrameError(f"bus {bus.name} unit {unit}: no valid reply to FC02 in "
                             f"{bytes(tap.buf).hex(' ')}")
        bus.timeouts += 1
        raise DriverTimeout(f"bus {bus.name} unit {unit}: no reply in "
                            f"{timeout_s * 1000:.0f} ms")

    def _parse(self, buf: bytes, unit: int, count: int) -> tuple[bool, ...] | None:
        """The inputs in `buf` (frames_modbus.find_read_inputs_reply). A reply byte for byte the
        same as the board's last good one is that one (its CRC was checked): at rest nearly
        every reply is, and it is then neither checked nor unpacked again."""
        last = self._last.get(unit)
        if last is not None and last[0] == buf:
            return last[1]
        bits = find_read_inputs_reply(buf, unit, count)
        if bits is not None and len(buf) == read_inputs_reply_len(count):
            self._last[unit] = (buf, bits)
        return bits

    def _drop_stale(self, tap: RawTap) -> None:
        if tap.buf:  # bytes nobody asked for (a late reply, noise) never answer this request
            self._bus.stale_bytes += len(tap.buf)
            tap.buf.clear()

    def _write(self, frame: bytes) -> None:
        """Write straight to the port (8 bytes: the OS takes them at once), via pymodbus's
        transport only for what the port did not take."""
        bus = self._bus
        transport = bus.client.ctx.transport
        port = getattr(transport, "sync_serial", None)
        if transport is None:
            raise DriverUnavailable(f"bus {bus.name}: port closed")
        written = 0
        if port is not None:
            try:
                if type(port) is serial.Serial:  # POSIX, O_NONBLOCK: skip pyserial's bookkeeping
                    written = os.write(port.fileno(), frame)
                else:
                    written = port.write(frame) or 0
            except BlockingIOError:
                written = 0
            except (serial.SerialException, OSError) as exc:
                bus.close()
                raise DriverUnavailable(f"bus {bus.name}: write failed: {exc}") from exc
        if written < len(frame):
            if not isinstance(transport, asyncio.WriteTransport):
                raise DriverUnavailable(f"bus {bus.name}: cannot write to {transport!r}")
            transport.write(frame[written:])
        bus._traced("tx", frame)

    # Sent now, read later

    def send(self, unit: int, count: int, deliver: Callable[[PollResult], None]) -> bool:
        """Send the FC02 request of `unit` now if the line is free, and stop watching the port.

        False (nothing sent) while anything holds, wants or owes the line: the caller reads
        that board the awaited way instead. `deliver` is called exactly once, when the reply
        is read (by `harvest`, or by `finish`, which every transaction runs first).
        """
        bus = self._bus
        if self._flight is not None or not bus.scheduler.free() or not bus.client.connected:
            return False
        transport = bus.client.ctx.transport
        port = getattr(transport, "sync_serial", None)
        tap = bus._install_tap()
        if port is None or tap.to_inner or tap.waiter is not None:
            return False
        if self._unwatched is not port:
            self.watch()  # (a new port after a reconnect)
            asyncio.get_running_loop().remove_reader(port.fileno())
            self._unwatched = port
        self._drop_stale(tap)  # (bytes arriving unwatched are skipped in front of the reply)
        try:
            self._write(self._request(unit, count))
        except DriverError:
            self.watch()
            raise
        self._flight = InFlight(unit, count, bus._clock(), deliver)
        bus.scheduler.pending = self.finish
        bus.scheduler.sent_outside()
        self.sent_later += 1
        return True

    def harvest(self) -> bool:
        """One non-blocking read for the reply of the poll in flight; True when none is left
        in flight (no poll, or its reply read and delivered), False while it is incomplete."""
        flight = self._flight
        if flight is None:
            return True
        if flight.finishing is not None:
            return False
        bus = self._bus
        port = getattr(bus.client.ctx.transport, "sync_serial", None)
        tap = self._bus._tap
        if port is None or tap is None or tap.lost:
            self._end(flight, DriverUnavailable(f"bus {bus.name}: port closed"))
            return True
        self.port_reads += 1
        try:
            self._read_port(port)
        except DriverUnavailable as exc:
            self._end(flight, exc)
            return True
        if not tap.buf:
            return False
        try:
            bits = self._parse(bytes(tap.buf), flight.unit, flight.count)
        except DriverError as exc:  # the board's exception reply
            tap.buf.clear()
            self._end(flight, DriverError(f"bus {bus.name} {exc}"))
            return True
        if bits is None:
            return False
        tap.buf.clear()
        self.harvested += 1
        self._end(flight, bits)
        return True

    async def finish(self) -> None:
        """Read the reply of the poll in flight, waiting for it up to the read timeout."""
        flight = self._flight
        if flight is None:
            return
        if flight.finishing is not None:
            await asyncio.shield(flight.finishing)
            return
        if self.harvest():
            return
        bus = self._bus
        loop = asyncio.get_running_loop()
        flight.finishing = loop.create_future()
        result: PollResult = DriverTimeout(f"bus {bus.name} unit {flight.unit}: reply abandoned")
        try:
            tap = bus._install_tap()
            self.watch()
            timeout_s = bus.read_timeout_s
            deadline = loop.time() + max(0.0, flight.sent + timeout_s - bus._clock())
            result = await self._await_reply(tap, flight.unit, flight.count, deadline, timeout_s)
            self._took(bus._clock() - flight.sent)
        except DriverError as exc:
            result = exc
        finally:
            self._end(flight, result)
            flight.finishing.set_result(None)

    def _end(self, flight: InFlight, result: PollResult) -> None:
        """The poll's reply is read (or lost): the line is free again; deliver the result."""
        bus = self._bus
        self._flight = None
        bus.scheduler.pending = None
        now = bus._clock()
        if isinstance(result, (DriverTimeout, FrameError)):
            bus.scheduler.mark_dirty()
            bus.scheduler.ended_at(now)
        else:
            # Read late, the reply ended about the line's request-to-reply time after the
            # request went out; one gap more covers a board that answers a little slower this
            # time (never later than now): the inter-frame gap counts from there.
            end = flight.sent + max(self._reply_span(), self._wire_time(flight))
            bus.scheduler.ended_at(min(now, end + bus.scheduler.gap_s))
        try:
            flight.deliver(result)
        except Exception:  # a consumer's bug must not leave the line owed
            log.exception("bus %s: delivering a poll result failed", bus.name)

    def _wire_time(self, flight: InFlight) -> float:
        key = (flight.unit, flight.count)
        wire = self._wire.get(key)
        if wire is None:
            chars = len(self._request(*key)) + read_inputs_reply_len(flight.count)
            wire = self._wire[key] = chars * char_time(self._bus.baudrate)
        return wire

    def _read_port(self, port: Any) -> None:
        """One non-blocking read of what the port holds, into the tap (as the loop's reader would)."""
        tap = self._bus._tap
        if type(port) is serial.Serial:  # a POSIX port, opened O_NONBLOCK: skip pyserial's select
            try:
                data = os.read(port.fileno(), 1024)
            except BlockingIOError:
                return
            except OSError as exc:
                self._bus.close()
                raise DriverUnavailable(f"bus {self._bus.name}: read failed: {exc}") from exc
        else:
            data = port.read(1024)
        if data and tap is not None:
            tap.data_received(data)

    def watch(self) -> None:
        """Watch the port again (pymodbus's own reader) before any exchange that waits for a
        reply or settles the line; what came meanwhile is read first (into the tap's buffer)."""
        port: Any = self._unwatched
        self._unwatched = None
        if port is None:
            return
        transport: Any = self._bus.client.ctx.transport
        current: Any = getattr(transport, "sync_serial", None)
        if current is None or current is not port:
            return  # closed or replaced since: its reader went with it
        self._read_port(current)
        asyncio.get_running_loop().add_reader(current.fileno(), transport.intern_read_ready)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
