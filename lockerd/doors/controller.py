"""Door controller: opens doors, watches sensors, raises door/board alerts; long because opening,
lost-reply truth and adaptive polling all act on the same tracked doors.

Opening = one relay pulse, then watching the sensor until the door reads open. No open within
`open_confirm_s`: read the state, fire one new pulse, still closed -> jammed, compartment
blocked (docs/lifecycle.md). A pulse whose reply is lost or garbled may still have opened the
door, so the door is read before anything is decided: it reads open -> opened; it cannot be
read -> `unknown` (never "nothing happened", docs/boards.md "Lost replies"). A silent board
makes its doors unknown and raises board_offline; it is retried with backoff while the other
boards keep being polled. A compartment whose door switch is wired to GPIO
(`[[gpio.door_switches]]`) takes its door state from that switch (the GPIO monitor reports it
through `door_switch()`), not from its board's input.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import Component
from lockerd.config import Compartment
from lockerd.config import Doors as DoorsConfig
from lockerd.doors.bus_round import run_round
from lockerd.doors.events import (
    DoorClosed,
    DoorCommanded,
    DoorFault,
    DoorLeftOpen,
    DoorOpened,
    DoorStateChanged,
    LeftOpenLevel,
    OpenResult,
    Outcome,
)
from lockerd.doors.ports import BlockedView, BlockNote, BoardSource
from lockerd.doors.tracking import PolledBoard, TrackedDoor, block_fields, door_incidents
from lockerd.drivers.base import BoardSnapshot, DoorState, LaterPolled, PollLine
from lockerd.drivers.errors import DriverError
from lockerd.drivers.factory import BoardSet

log = logging.getLogger(__name__)

BACKOFF_MAX_S = 10.0


class UnknownCompartment(LookupError):
    """No compartment with that number."""


class CompartmentIsBlocked(RuntimeError):
    """The compartment is blocked; customer flows must pick another."""


class DoorController(Component):
    """The `doors` component: the only code that pulses a lock relay."""

    name = "doors"
    progress_deadline = 30.0

    def __init__(self, cfg: DoorsConfig, compartments: Sequence[Compartment], events: EventBus,
                 boards: BoardSource, *, door_switches: Collection[int] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`door_switches`: compartments whose door state comes from a GPIO switch."""
        super().__init__()
        self._cfg = cfg
        self._events = events
        self._source = boards
        self._clock = clock
        self._set: BoardSet | None = None
        self._doors: dict[int, TrackedDoor] = {c.id: TrackedDoor(c) for c in compartments}
        unknown = sorted(set(door_switches) - set(self._doors))
        if unknown:
            raise UnknownCompartment(f"door switches on unknown compartments {unknown}")
        self._switched = frozenset(door_switches)
        self._boards: dict[int, PolledBoard] = {}
        self._rounds: list[tuple[PollLine, list[PolledBoard]]] = []
        self._blocks: BlockedView | None = None
        self._changed = asyncio.Event()
        self.commands = 0

    @property
    def board_set(self) -> BoardSet | None:
        """The opened boards (and the simulator, when it runs them)."""
        return self._set

    # Lifecycle

    async def start(self) -> None:
        """Open buses and boards (relays forced off)."""
        self._set = await self._source.open()
        self._boards = {}
        for addr, board in self._set.boards.items():
            doors = {d.comp.channel: d for d in self._doors.values() if d.comp.board == addr}
            switched_only = bool(doors) and all(d.comp.id in self._switched for d in doors.values())
            self._boards[addr] = PolledBoard(board, doors, switched_only=switched_only)
        self._rounds = _bus_rounds(self._boards.values())

    async def run(self) -> None:
        """Poll every board in its own loop, and idle boards in their bus's round, until cancelled."""
        boards = list(self._boards.values())
        period = self._cfg.poll_idle_ms / 1000
        async with asyncio.TaskGroup() as tg:
            for i, b in enumerate(boards):
                tg.create_task(self._poll_loop(b, period * i / len(boards)),
                               name=f"doors:poll:{b.board.address}")
            for n, (line, members) in enumerate(self._rounds):
                tg.create_task(run_round(line, members, period, self._delivered),
                               name=f"doors:round:{n}")

    async def stop(self) -> None:
        """Close the boards (pending relay-offs finish first) and the simulator."""
        if self._set is not None:
            board_set, self._set = self._set, None
            await board_set.close()

    def status(self) -> dict[str, Any]:
        """Boards online, blocked compartments, door counts."""
        states = [d.state.value for d in self._doors.values()]
        return {"boards": {str(a): {"online": b.online, "failures": b.failures}
                           for a, b in self._boards.items()},
                "blocked": sorted(self.blocked), "commands": self.commands,
                "open": states.count("open"), "unknown": states.count("unknown")}

    def poll_counts(self) -> dict[int, int]:
        """Reads each board's poll loop has made (benches, and tests of the adaptive rate)."""
        return {a: b.polls for a, b in self._boards.items()}

    # Public API for flows

    def occupied(self, compartment_id: int) -> bool | None:
        """Item seen in the compartment (Kerong infrared), None where the board cannot tell."""
        door = self._door(compartment_id)
        board = self._boards.get(door.comp.board)
        if board is None or board.occupied is None or door.comp.channel >= len(board.occupied):
            return None
        return board.occupied[door.comp.channel]

    def state(self, compartment_id: int) -> DoorState:
        """Last known sensor state."""
        return self._door(compartment_id).state

    def attach_blocks(self, view: BlockedView) -> None:
        """Read blocked compartments from `view` (the domain); without one nothing is blocked."""
        self._blocks = view

    def _notes(self) -> dict[int, BlockNote]:
        return {} if self._blocks is None else dict(self._blocks.blocks())

    @property
    def blocked(self) -> dict[int, str]:
        """Blocked compartments and why, as the domain keeps them."""
        return {cid: note.blocked_reason or "blocked" for cid, note in self._notes().items()}

    async def open(self, compartment_id: int, reason: str, actor: str, *,
                   allow_blocked: bool = False) -> OpenResult:
        """Pulse the lock and confirm by the sensor; one new pulse after reading the state."""
        door = self._door(compartment_id)
        blocked = self.blocked
        if compartment_id in blocked and not allow_blocked:
            raise CompartmentIsBlocked(f"compartment {compartment_id} is blocked "
                                       f"({blocked[compartment_id]})")
        async with door.lock:
            self.commands += 1
            result = await self._open_locked(door)
        log.info("open compartment %d by %s: %s after %d pulse(s), %.0f ms", compartment_id,
                 actor, result.outcome.value, result.pulses, result.elapsed_s * 1000)
        self._events.publish(DoorCommanded(compartment_id, reason, actor, result))
        return result

    async def wait_closed(self, compartment_id: int, timeout_s: float) -> bool:
        """True once the sensor reads closed (at once if it does); False on timeout."""
        door = self._door(compartment_id)
        door.waiters += 1
        self._kick(door)
        try:
            return await self._wait_state(door, DoorState.CLOSED, timeout_s)
        finally:
            door.waiters -= 1

    def door_switch(self, compartment_id: int, is_open: bool | None) -> None:
        """A GPIO door switch reports its door (debounced): open, closed, or None = unknown.

        Only compartments configured with a switch take it; their board input is not used.
        """
        door = self._door(compartment_id)
        if compartment_id not in self._switched:
            log.warning("door switch report for compartment %d, which has none configured",
                        compartment_id)
            return
        state = DoorState.UNKNOWN if is_open is None else (
            DoorState.OPEN if is_open else DoorState.CLOSED)
        if self._update(door, state, self._clock()):
            board = self._boards.get(door.comp.board)
            if board is not None:
                board.open_doors = sum(d.state is DoorState.OPEN for d in board.doors.values())
            self._notify()
            self._kick(door)

    def describe(self) -> dict[str, Any]:
        """Every door and board as JSON-able rows (doors.list); no personal data."""
        now = self._clock()
        notes = self._notes()
        doors = [{"compartment": d.comp.id, "size": d.comp.size.value, "board": d.comp.board,
                  "channel": d.comp.channel, "state": d.state.value,
                  "sensor": "gpio" if d.comp.id in self._switched else "board",
                  **block_fields(notes.get(d.comp.id)),
                  "open_for_s": None if d.opened_at is None else round(now - d.opened_at, 1),
                  "occupied": self.occupied(d.comp.id)}
                 for d in sorted(self._doors.values(), key=lambda d: d.comp.id)]
        boards = [{**b.board.info(), "online": b.online} for b in self._boards.values()]
        return {"doors": doors, "boards": boards}

    def incidents(self) -> list[dict[str, Any]]:
        """Boards offline and doors whose state is unknown, with ages (`incidents`)."""
        return door_incidents(self._boards, self._doors.values(), self._clock())

    # Opening

    async def _open_locked(self, door: TrackedDoor) -> OpenResult:
        t0 = self._clock()
        prior = door.state
        door.command_pending = True
        pulses = 0
        acked = False
        polled = self._boards.get(door.comp.board)
        # a board that answered its last poll: a pulse without a reply may still have acted
        answering = polled is not None and polled.online is not False
        try:
            # The poll loop is woken only after the pulse: woken first, its read would take
            # the idle bus and the unlock would wait a whole poll transaction behind it.
            pulses, acked = 1, await self._pulse(door)
            self._kick(door)
            if prior is DoorState.OPEN:
                return self._result(door, Outcome.ALREADY_OPEN, pulses, t0,
                                    "sensor read open before the pulse; relay fired anyway")
            if await self._wait_state(door, DoorState.OPEN, self._cfg.open_confirm_s):
                return self._result(door, Outcome.OPENED, pulses, t0)
            state = await self._read_now(door)
            if state is DoorState.OPEN:
                return self._result(door, Outcome.OPENED, pulses, t0)
            if state is DoorState.UNKNOWN:
                return self._unconfirmed(door, acked, pulses, t0, answering)
            pulses += 1
            acked = await self._pulse(door) or acked
            if await self._wait_state(door, DoorState.OPEN, self._cfg.open_confirm_s):
                return self._result(door, Outcome.OPENED, pulses, t0, "opened on the second pulse")
            state = await self._read_now(door)
            if state is DoorState.OPEN:
                return self._result(door, Outcome.OPENED, pulses, t0, "opened on the second pulse")
            if state is DoorState.CLOSED and acked:
                cid = door.comp.id
                self._fault(cid, AlertKind.DOOR_JAMMED)
                self._alert(AlertKind.DOOR_JAMMED, Severity.WARNING, True,
                            f"door stayed closed after {pulses} pulses", compartment=cid)
                return self._result(door, Outcome.JAMMED, pulses, t0,
                                    "door stayed closed after two pulses; compartment blocked")
            return self._unconfirmed(door, acked, pulses, t0, answering)
        finally:
            door.command_pending = False
            door.expect_open_until = self._clock() + self._cfg.open_confirm_s

    def _unconfirmed(self, door: TrackedDoor, acked: bool, pulses: int, t0: float,
                     answering: bool) -> OpenResult:
        """No sensor evidence either way. An acknowledged pulse counts as opened; a pulse to a
        board that answered until then but whose reply was lost or garbled may have opened the
        door, so its state is `unknown` (the flows hold the compartment); only a board that was
        already silent before the pulse makes it `failed`."""
        if acked:
            return self._result(door, Outcome.ACKNOWLEDGED, pulses, t0,
                                "board acknowledged; the sensor could not confirm")
        if answering:
            log.warning("compartment %d: pulse reply lost and the door cannot be read: state "
                        "unknown", door.comp.id)
            return self._result(door, Outcome.UNKNOWN, pulses, t0,
                                "the board's reply was lost and the door could not be read")
        return self._result(door, Outcome.FAILED, pulses, t0,
                            "no acknowledgement from the board and no sensor evidence")

    def _result(self, door: TrackedDoor, outcome: Outcome, pulses: int, t0: float,
                detail: str = "") -> OpenResult:
        return OpenResult(door.comp.id, outcome, pulses, self._clock() - t0, detail)

    async def _pulse(self, door: TrackedDoor) -> bool:
        board = self._boards.get(door.comp.board)
        if board is None:
            return False
        try:
            await board.board.pulse(door.comp.channel, self._cfg.pulse_ms)
        except DriverError as exc:
            log.warning("compartment %d: pulse not acknowledged: %s", door.comp.id, exc)
            return False
        return True

    async def _read_now(self, door: TrackedDoor) -> DoorState:
        board = self._boards.get(door.comp.board)
        if board is None:
            return DoorState.UNKNOWN
        try:
            snap = await board.board.read()
        except DriverError:
            return DoorState.UNKNOWN
        board.occupied = snap.occupied
        self._apply(board, snap.doors, snap)
        return door.state

    async def _wait_state(self, door: TrackedDoor, want: DoorState, limit_s: float) -> bool:
        try:
            async with asyncio.timeout(limit_s):
                while door.state is not want:
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _kick(self, door: TrackedDoor) -> None:
        board = self._boards.get(door.comp.board)
        if board is not None:
            board.kick.set()

    # Polling

    def _moving(self, b: PolledBoard) -> bool:
        """A door of the board is in motion: a pulse pending, a flow waiting for it, or it
        changed state in the last `poll_fast_hold_s` (GPIO-switched doors report themselves)."""
        since = self._clock() - self._cfg.poll_fast_hold_s
        return any(d.command_pending or d.waiters or d.moved_at > since
                   for d in b.doors.values() if d.comp.id not in self._switched)

    def _period(self, b: PolledBoard) -> tuple[float, bool]:
        """(seconds to the next poll, whether a door command may cut it short)."""
        if b.switched_only:
            return self._cfg.poll_switched_ms / 1000, True
        if self._moving(b):
            return self._cfg.poll_moving_ms / 1000, False
        return self._cfg.poll_idle_ms / 1000, True

    async def _poll_loop(self, b: PolledBoard, phase_s: float = 0.0) -> None:
        addr = b.board.address
        while True:
            b.polls += 1
            try:
                snap = await b.board.read()
            except DriverError as exc:
                b.failures += 1
                if b.online is not False:
                    b.online = False
                    b.offline_since = self._clock()
                    log.error("board %d offline: %s", addr, exc)
                    self._alert(AlertKind.BOARD_OFFLINE, Severity.CRITICAL, True,
                                f"board {addr} does not answer", board=addr)
                    self._apply(b, tuple(DoorState.UNKNOWN for _ in range(b.board.channels)))
                delay = min(self._cfg.poll_idle_ms / 1000 * 2 ** (b.failures - 1), BACKOFF_MAX_S)
                await asyncio.sleep(delay)  # a door command does not hurry a silent board
                b.kick.clear()
                continue
            self._took(b, snap)
            delay, kickable = self._period(b)
            if kickable and b.in_round and b.online:
                b.later = True  # idle and answering: its bus round polls it until a kick
                await b.kick.wait()
                b.later = False
                continue
            if kickable and not b.switched_only:
                # At rest each board keeps its own slot of the idle period (`phase_s`), so the
                # boards of a bus never queue behind each other for the line and its gap.
                delay -= (self._clock() - phase_s) % delay
            if kickable:
                await b.kick.sleep(delay)
            else:
                await asyncio.sleep(delay)
                b.kick.clear()

    def _took(self, b: PolledBoard, snap: BoardSnapshot) -> None:
        """A board answered a poll: back online if it was not, its doors, left-open escalation."""
        if b.online is not True:
            if b.online is False:
                log.info("board %d back online after %d failed polls", b.board.address,
                         b.failures)
                self._alert(AlertKind.BOARD_OFFLINE, Severity.INFO, False,
                            f"board {b.board.address} answers again", board=b.board.address)
            b.online = True
            b.failures = 0
            b.offline_since = None
        b.occupied = snap.occupied
        if snap is not b.applied:  # drivers hand back the same snapshot while nothing changed
            self._apply(b, snap.doors, snap)
        if b.open_doors:
            self._escalate(b)
        self.progress()

    def _delivered(self, b: PolledBoard, result: BoardSnapshot | DriverError) -> None:
        """A bus round's poll of `b` was read: take it; on an error, or when a door of the board
        now moves, the board's own loop takes over (reads at once, fast or with backoff)."""
        if isinstance(result, DriverError):
            log.info("board %d: idle poll failed (%s); reading it again", b.board.address, result)
        else:
            changed = result is not b.applied
            self._took(b, result)
            if not changed or not self._moving(b):
                return  # the same snapshot: no door moved (a command kicks the board itself)
        b.later = False
        b.kick.set()

    def _apply(self, b: PolledBoard, states: tuple[DoorState, ...],
               snap: BoardSnapshot | None = None) -> None:
        """A board read: its door inputs, except for doors that have a GPIO switch."""
        b.applied = snap
        now = self._clock()
        changed = False
        for channel, door in b.doors.items():
            if door.comp.id not in self._switched:
                changed = self._update(door, states[channel], now) or changed
        if changed:
            b.open_doors = sum(d.state is DoorState.OPEN for d in b.doors.values())
            self._notify()

    def _update(self, door: TrackedDoor, new: DoorState, now: float) -> bool:
        """Take a new sensor state for one door: events, forced-door and left-open handling."""
        old = door.state
        if new is old:
            return False
        door.state = new
        door.changed_at = now
        if new is DoorState.OPEN or old is DoorState.OPEN:
            door.moved_at = now
        cid = door.comp.id
        self._events.publish(DoorStateChanged(cid, old, new))
        if new is DoorState.OPEN:
            commanded = door.command_pending or now <= door.expect_open_until
            if old is DoorState.CLOSED or door.opened_at is None:
                door.opened_at = now
            if old is DoorState.CLOSED:
                self._events.publish(DoorOpened(cid, commanded))
                if not commanded:
                    log.warning("compartment %d opened without a command", cid)
                    self._fault(cid, AlertKind.DOOR_FORCED)
                    self._alert(AlertKind.DOOR_FORCED, Severity.CRITICAL, True,
                                "door opened without a command", compartment=cid)
        elif new is DoorState.CLOSED:
            if door.opened_at is not None:
                self._events.publish(DoorClosed(cid, now - door.opened_at))
            door.opened_at = None
            if door.left_open is not None and door.left_open is not LeftOpenLevel.PROMPT:
                self._alert(AlertKind.DOOR_LEFT_OPEN, Severity.INFO, False, "door closed",
                            compartment=cid)
            door.left_open = None
        return True

    def _escalate(self, b: PolledBoard) -> None:
        now = self._clock()
        steps = ((LeftOpenLevel.PROMPT, self._cfg.left_open_prompt_s),
                 (LeftOpenLevel.ALERT, self._cfg.left_open_alert_s),
                 (LeftOpenLevel.INCIDENT, self._cfg.left_open_incident_s))
        order = [s for s, _ in steps]
        for door in b.doors.values():
            if door.state is not DoorState.OPEN or door.opened_at is None:
                continue
            open_for = now - door.opened_at
            for level, limit in steps:
                done = door.left_open is not None and order.index(door.left_open) >= order.index(level)
                if open_for < limit or done:
                    continue
                door.left_open = level
                cid = door.comp.id
                self._events.publish(DoorLeftOpen(cid, level, open_for))
                if level is LeftOpenLevel.ALERT:
                    self._alert(AlertKind.DOOR_LEFT_OPEN, Severity.WARNING, True,
                                f"door open for {open_for:.0f} s", compartment=cid)
                elif level is LeftOpenLevel.INCIDENT:
                    self._alert(AlertKind.DOOR_LEFT_OPEN, Severity.CRITICAL, True,
                                f"incident: door open for {open_for:.0f} s", compartment=cid)
                    self._fault(cid, AlertKind.DOOR_LEFT_OPEN)

    def _fault(self, compartment_id: int, kind: AlertKind) -> None:
        """Report a door fact; the domain decides and records the block."""
        log.warning("compartment %d: %s", compartment_id, kind.value)
        self._events.publish(DoorFault(compartment_id, kind.value))

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _alert(self, kind: AlertKind, severity: Severity, active: bool, detail: str, *,
               compartment: int | None = None, board: int | None = None) -> None:
        self._events.publish(Alert(kind, severity, active, detail, compartment, board))

    def _door(self, compartment_id: int) -> TrackedDoor:
        door = self._doors.get(compartment_id)
        if door is None:
            raise UnknownCompartment(f"no compartment {compartment_id}")
        return door


def _bus_rounds(boards: Collection[PolledBoard]) -> list[tuple[PollLine, list[PolledBoard]]]:
    """Boards that can be polled later, grouped by bus (GPIO-switched-only boards keep their
    slow loop): each group gets one round (doors/bus_round.py)."""
    rounds: dict[int, tuple[PollLine, list[PolledBoard]]] = {}
    for b in boards:
        if b.switched_only or not isinstance(b.board, LaterPolled):
            continue
        line = b.board.line
        rounds.setdefault(id(line), (line, []))[1].append(b)
        b.in_round = True
    return list(rounds.values())
