"""Door operations a screen drives: started at once, their door progress pushed to subscribed panels.

The blocking `panel.*` methods (lockerd/parcels/panel_api.py) answer when the door has closed;
a touchscreen must say "door 5 is open" the moment the latch releases. `PanelOps` runs each use
case of `ParcelService` as a task, answers the caller as soon as the begin is recorded (the
compartment is known, the pulse is about to go), and pushes what follows as events to the
panel's subscribers (lockerd/parcels/panel_v2.py; docs/local-api.md, "Panel API v2"):

  pulse_sent -> opened -> [left_open] -> closed -> done
             -> jammed -> offered (a deposit moves to another compartment) -> pulse_sent ...
             -> rolled_back (not opened, jammed, left open, occupancy mismatch)

An operation keeps running when the screen's connection drops: the door is physical. Events
carry ids, compartment numbers, statuses and codes only, never a code, PIN or waybill.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lockerd.api.server import Pusher
from lockerd.app.events import EventBus
from lockerd.camera.intake import IntakeChanged
from lockerd.domain import Decision, ErrorCode
from lockerd.domain.errors import Refused, refuse_unless_ok
from lockerd.doors.events import DoorClosed, DoorCommanded, DoorLeftOpen, DoorOpened
from lockerd.parcels.ports import IntakeGate
from lockerd.parcels.service import OnBegin, ParcelService, RecordFailed

log = logging.getLogger(__name__)

API_VERSION = 2
#: Finished operations remembered for `panel.v2.op` (a screen that reconnects catches up).
KEEP_FINISHED = 200
_OPENED = frozenset({"acknowledged", "opened", "already_open"})
#: Result keys a screen may be told when an operation ends (no codes, waybills or contents).
_DONE_KEYS = ("parcel_id", "status", "reason", "fee_cents", "storage_deadline", "received_at",
              "blocked")
#: ... and when it starts; a card check's masked result (`张*`, `1****************X`) is shown
#: to the person at the reader (docs/idcard.md), never its hash.
_START_KEYS = (*_DONE_KEYS, "compartment", "size", "overdue", "identity_check")


class OpKind(StrEnum):
    """The door operations a panel starts."""

    PICKUP = "pickup"
    DELIVER = "deliver"
    DROPOFF = "dropoff"
    COLLECT = "collect"
    RETURN = "return"


class OpState(StrEnum):
    """Where an operation is; `done`, `rolled_back` and `failed` are final."""

    STARTING = "starting"
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


FINAL = frozenset({OpState.DONE, OpState.ROLLED_BACK, OpState.FAILED})

#: What runs one use case, told (possibly more than once) when a begin is recorded.
Runner = Callable[[OnBegin], Awaitable[Decision]]


@dataclass(slots=True)
class Operation:
    """One door operation started from a panel."""

    id: str
    kind: OpKind
    panel: str
    compartment: int | None = None
    parcel_id: str | None = None
    state: OpState = OpState.STARTING
    events: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        """What `panel.v2.op` answers: the state and every event so far."""
        return {"op": self.id, "kind": self.kind.value, "compartment": self.compartment,
                "parcel_id": self.parcel_id, "state": self.state.value, "events": list(self.events)}


class PanelOps:
    """Starts operations, follows their doors on the event bus, pushes events to subscribers."""

    def __init__(self, service: ParcelService, bus: EventBus, gate: IntakeGate) -> None:
        self._service = service
        self._gate = gate
        self._ops: OrderedDict[str, Operation] = OrderedDict()
        self._at_door: dict[int, Operation] = {}
        self._subscribers: dict[Pusher, str] = {}
        self._tasks: set[asyncio.Task[Decision | None]] = set()
        bus.listen(self._on_door, DoorOpened, DoorClosed, DoorLeftOpen, DoorCommanded)
        bus.listen(self._on_intake, IntakeChanged)

    # ---- subscriptions -------------------------------------------------------------------------

    def subscribe(self, pusher: Pusher, panel: str) -> dict[str, Any]:
        """Push this panel's operation events (and cabinet-wide intake changes) on `pusher`."""
        if pusher not in self._subscribers:
            pusher.on_close(lambda: self._unsubscribe(pusher))
        self._subscribers[pusher] = panel
        live = [op.view() for op in self._ops.values()
                if op.panel == panel and op.state not in FINAL]
        return {"version": API_VERSION, "subscribed": True, "intake": self.intake(), "ops": live}

    def _unsubscribe(self, pusher: Pusher) -> None:
        self._subscribers.pop(pusher, None)

    def intake(self) -> dict[str, Any]:
        """Whether drop-offs are accepted now (Art. 19) and why not."""
        return {"open": self._gate.is_open(), "reason": self._gate.reason()}

    @property
    def subscribers(self) -> int:
        """Connections subscribed now."""
        return len(self._subscribers)

    # ---- operations ----------------------------------------------------------------------------

    def get(self, op_id: str, panel: str) -> Operation:
        """The operation `op_id` started at `panel`; Refused otherwise (ids are not shared)."""
        op = self._ops.get(op_id)
        if op is None or op.panel != panel:
            raise Refused(ErrorCode.BAD_STATE, "no such operation at this panel")
        return op

    async def start(self, kind: OpKind, panel: str, run: Runner) -> dict[str, Any]:
        """Run a use case as an operation; return once its begin is recorded (or raise Refused
        when it is refused). A deposit whose door jams is moved on by the service itself, which
        calls `on_begin` again with the new compartment: that is the `offered` event."""
        op = Operation(secrets.token_hex(8), kind, panel)
        loop = asyncio.get_running_loop()
        begun: asyncio.Future[Decision] = loop.create_future()

        def on_begin(decision: Decision) -> None:
            self._begun(op, decision, offered=begun.done())
            if not begun.done():
                begun.set_result(decision)

        task = loop.create_task(self._drive(op, run, on_begin), name=f"panel-op:{kind}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        waiter: asyncio.Future[Decision | None] = asyncio.ensure_future(asyncio.shield(task))
        try:
            either: list[asyncio.Future[Any]] = [begun, waiter]
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await waiter
        if begun.done():
            decision = begun.result()
            return {"op": op.id, "kind": kind.value, "state": op.state.value,
                    **{k: v for k, v in decision.result.items() if k in _START_KEYS}}
        # the operation ended without a door: a refusal, or the log could not record it
        ended = task.result() if not task.cancelled() else None
        if ended is None:
            raise Refused(ErrorCode.INTERNAL_ERROR, "the operation could not be recorded; "
                                                    "nothing was opened")
        refuse_unless_ok(ended)
        raise Refused(ErrorCode.BAD_STATE, "the operation ended without opening a door")

    async def stop(self) -> None:
        """Cancel running operations (the service records their doors as not closed)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- internals -----------------------------------------------------------------------------

    def _remember(self, op: Operation) -> None:
        self._ops[op.id] = op
        finished = [k for k, o in self._ops.items() if o.state in FINAL]
        for key in finished[:max(0, len(finished) - KEEP_FINISHED)]:
            del self._ops[key]

    def _begun(self, op: Operation, decision: Decision, *, offered: bool) -> None:
        cid = decision.open_door
        assert cid is not None
        if op.compartment is not None:
            self._at_door.pop(op.compartment, None)
        op.compartment, op.parcel_id = cid, decision.record.parcel_id
        op.state = OpState.OPENING
        self._at_door[cid] = op
        self._remember(op)
        if offered:
            self._emit(op, "offered")
        self._emit(op, "pulse_sent")

    async def _drive(self, op: Operation, run: Runner, on_begin: OnBegin) -> Decision | None:
        """Run the use case to its end; the last decision, None when it failed."""
        try:
            decision = await run(on_begin)
            self._ended(op, decision)
            return decision
        except RecordFailed as exc:
            self._finish(op, OpState.FAILED, "failed", message=str(exc))
        except Refused as exc:  # disk_full: at the begin nothing moved; at the end the door
            if op.compartment is None:  # did, and its end is recorded once there is space
                raise  # `start` answers it
            self._finish(op, OpState.FAILED, "failed", code=exc.code.value, message=exc.message)
        except asyncio.CancelledError:
            self._finish(op, OpState.FAILED, "failed", message="lockerd is stopping")
            raise
        except Exception:
            log.exception("panel operation %s failed", op.kind)
            self._finish(op, OpState.FAILED, "failed", message="internal error")
        return None

    def _ended(self, op: Operation, decision: Decision) -> None:
        if op.compartment is None:
            return  # refused at the begin: `start` raises it to the caller, nothing to push
        kind = decision.record.kind
        if kind.endswith(".rollback"):
            self._finish(op, OpState.ROLLED_BACK, "rolled_back",
                         failure=decision.record.body.get("failure"),
                         blocked=decision.result.get("blocked"))
        elif decision.ok:
            self._finish(op, OpState.DONE, "done", record=kind,
                         **{k: v for k, v in decision.result.items() if k in _DONE_KEYS})
        else:
            self._finish(op, OpState.FAILED, "failed", error=decision.error,
                         message=decision.message)

    def _finish(self, op: Operation, state: OpState, event: str, **extra: Any) -> None:
        if op.compartment is not None and self._at_door.get(op.compartment) is op:
            del self._at_door[op.compartment]
        op.state = state
        if op.compartment is not None:
            self._emit(op, event, **extra)
            self._remember(op)

    def _emit(self, op: Operation, event: str, **extra: Any) -> None:
        line = {"event": event, "op": op.id, "kind": op.kind.value, "compartment": op.compartment,
                **{k: (v.value if isinstance(v, StrEnum) else v) for k, v in extra.items()}}
        op.events.append(line)
        for pusher, panel in list(self._subscribers.items()):
            if panel == op.panel:
                pusher.push(line)

    def _on_door(self, event: Any) -> None:
        op = self._at_door.get(event.compartment)
        if op is None:
            return
        if isinstance(event, DoorOpened) or (isinstance(event, DoorCommanded)
                                             and str(event.result.outcome) in _OPENED):
            if op.state is OpState.OPENING:
                op.state = OpState.OPEN
                self._emit(op, "opened")
        elif isinstance(event, DoorCommanded) and str(event.result.outcome) == "jammed":
            self._emit(op, "jammed")
        elif isinstance(event, DoorClosed) and op.state is OpState.OPEN:
            op.state = OpState.CLOSED
            self._emit(op, "closed")
        elif isinstance(event, DoorLeftOpen):
            self._emit(op, "left_open", level=event.level.value,
                       open_for_s=round(event.open_for_s, 1))

    def _on_intake(self, event: IntakeChanged) -> None:
        line = {"event": "intake", "op": None, "open": event.open, "reason": event.reason}
        for pusher in list(self._subscribers):
            pusher.push(line)

