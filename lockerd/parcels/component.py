"""The parcel flows as a daemon component: rebuilds the cabinet from the log, serves kiosks and carriers.

start()  reads the pickup-code key and the live state from the encrypted log, rebuilds the
         cabinet, mirrors door-controller blocks, and closes operations a crash left open
         (their door state is unknown: deposits rolled back, compartments blocked).
run()    marks parcels past their storage period overdue, periodically.
The local API methods (panel.*, courier.login) and the carrier commands (courier.grant,
courier.revoke, parcel.expect, parcel.recall) are registered once, at build time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from lockerd.api.server import ApiServer
from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import Component
from lockerd.config import Config, Size
from lockerd.domain import Cabinet, CabinetState, Compartment, Decision, Expect
from lockerd.domain.model import LIVE_STATUSES, SetCompartment
from lockerd.doors.events import CompartmentBlocked, CompartmentUnblocked
from lockerd.oplog import OpLog
from lockerd.parcels import panel_api
from lockerd.parcels.service import Camera, DoorControl, IntakeGate, ParcelService, ServiceConfig
from lockerd.parcels.spec_from_config import cabinet_spec
from lockerd.parcels.store import load_state
from lockerd.sync.commands import CommandContext, CommandError, CommandRegistry
from lockerd.sync.messages import event_message
from lockerd.sync.payloads import (
    CourierGrantBody,
    CourierRevokeBody,
    ParcelExpectBody,
    ParcelRecallBody,
)
from lockerd.sync.topics import Topics

log = logging.getLogger(__name__)

CODE_KEY_NAME = "pickup-code.hmac"


class AdjustableClock:
    """UTC wall clock plus an offset: the demo and tests fast-forward storage periods with it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        """Move the flows' time forward (never used by the daemon itself)."""
        self.offset += delta


class ParcelFlows(Component):
    """Owns the Cabinet and the ParcelService; one per daemon."""

    name = "parcels"

    def __init__(self, cfg: Config, *, oplog: Callable[[], OpLog], doors: DoorControl,
                 gate: IntakeGate, camera: Camera | None, bus: EventBus, topics: Topics,
                 wake: Callable[[], None] = lambda: None,
                 state_changed: Callable[[], None] = lambda: None,
                 blocked_doors: Callable[[], dict[int, str]] = dict,
                 clock: Callable[[], datetime] | None = None, sweep_interval_s: float = 30.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.clock: Callable[[], datetime] = clock or AdjustableClock()
        self._oplog = oplog
        self._wake = wake
        self._state_changed = state_changed
        self._blocked_doors = blocked_doors
        self._sweep_s = sweep_interval_s
        self._code_key: bytes | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._bus = bus
        self._full = False
        self.spec = cabinet_spec(cfg)
        self.cabinet = Cabinet(self.spec, self.clock, secrets.SystemRandom(),
                               code_digest=self._code_digest)
        self.service = ParcelService(
            self.cabinet, doors, oplog, gate,
            cfg=ServiceConfig(cabinet_id=cfg.cabinet.id, close_timeout_s=cfg.doors.close_timeout_s),
            message=lambda carrier, type_, body: event_message(topics, carrier, type_, body),
            camera=camera, on_operator_notice=self._operator_notice, on_recorded=self._recorded)
        bus.listen(self._on_door_event, CompartmentBlocked, CompartmentUnblocked)

    # ---- wiring ------------------------------------------------------------------------------

    def register_api(self, api: ApiServer) -> None:
        """panel.* and courier.login for kiosks (role panel)."""
        panel_api.register(api, self.service)

    def register_commands(self, registry: CommandRegistry) -> None:
        """The carrier commands of DESIGN section 4 that change the cabinet."""
        registry.register("courier.grant", self._grant)
        registry.register("courier.revoke", self._revoke)
        registry.register("parcel.expect", self._expect)
        registry.register("parcel.recall", self._recall)

    def free_counts(self) -> dict[str, int]:
        """Free compartments per size, from the domain (excludes reserved/occupied/blocked)."""
        counts = self.cabinet.free_counts()
        for cid in self._blocked_doors():
            comp = self.cabinet.state.compartments.get(cid)
            if comp is not None and comp.state.value == "free":
                counts[comp.size.value] -= 1
        return counts

    def blocked(self) -> list[int]:
        """Compartments blocked in the domain or by the door controller."""
        return sorted(set(self.cabinet.blocked()) | set(self._blocked_doors()))

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        store = self._oplog()
        self._code_key = await store.secret(CODE_KEY_NAME)
        data = await store.read(load_state)
        state = CabinetState.model_validate(data)
        for cid, size in self.spec.compartments:
            state.compartments.setdefault(cid, Compartment(id=cid, size=Size(size)))
        self.cabinet.state = state
        live = sum(1 for p in state.parcels.values() if p.status in LIVE_STATUSES)
        log.info("parcel flows: %d live parcels, %d couriers restored", live, len(state.couriers))
        recovered = await self.service.recover()
        if recovered:
            log.warning("closed %d door operations left open by a restart", len(recovered))
        for cid, reason in self._blocked_doors().items():
            await self.service.block(cid, reason, "doors")
        self._started = True
        self._state_changed()
        self._check_full()

    async def run(self) -> None:
        while True:
            self.progress()
            try:
                await self.service.sweep_overdue()
            except Exception as exc:
                log.error("overdue sweep failed: %s", exc)
            await asyncio.sleep(self._sweep_s)

    async def stop(self) -> None:
        self._started = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        live = [p for p in self.cabinet.state.parcels.values() if p.status in LIVE_STATUSES]
        return {"live_parcels": len(live), "free": self.cabinet.free_counts(),
                "blocked": self.cabinet.blocked(), "recorded": self.service.recorded}

    # ---- internals -----------------------------------------------------------------------------

    def _code_digest(self, code: str) -> str:
        """Keyed HMAC of a pickup code: equal codes give equal digests (uniqueness, lookup), and
        without the key (kept inside the encrypted log) a digest cannot be brute-forced."""
        if self._code_key is None:
            raise RuntimeError("pickup-code key not loaded (parcel flows not started)")
        return "hmac-sha256:" + hmac.new(self._code_key, code.encode(), hashlib.sha256).hexdigest()

    def _recorded(self, decision: Decision) -> None:
        if decision.events:
            self._wake()
        if any(isinstance(c, SetCompartment) for c in decision.changes):
            self._state_changed()
            self._check_full()

    def _check_full(self) -> None:
        """storage_full while no compartment of any size is free (Art. 12: report anomalies)."""
        free = sum(self.free_counts().values())
        full = free == 0
        if full == self._full:
            return
        self._full = full
        self._bus.publish(Alert(AlertKind.STORAGE_FULL, Severity.WARNING, full,
                                "no free compartment left" if full
                                else f"{free} compartment(s) free again"))

    def _operator_notice(self, text: str, decision: Decision) -> None:
        log.warning("operator: %s (%s)", text, decision.record.kind)

    def _on_door_event(self, event: Any) -> None:
        if not self._started:
            return
        if isinstance(event, CompartmentBlocked):
            coro = self.service.block(event.compartment, event.reason, "doors")
        else:
            coro = self.service.unblock(event.compartment, "doors")
        task = asyncio.get_running_loop().create_task(coro, name="parcels:door-event")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- carrier commands ----------------------------------------------------------------------

    @staticmethod
    def _reply(decision: Decision) -> Any:
        if not decision.ok:
            assert decision.error is not None
            raise CommandError(decision.error.value, decision.message)
        return decision.result

    async def _grant(self, ctx: CommandContext, body: CourierGrantBody) -> Any:
        return self._reply(await self.service.grant_courier(
            ctx.carrier, body.courier_id, body.expires, ctx.commit, pin=body.pin,
            pin_hash=body.pin_hash))

    async def _revoke(self, ctx: CommandContext, body: CourierRevokeBody) -> Any:
        return self._reply(await self.service.revoke_courier(ctx.carrier, body.courier_id,
                                                             ctx.commit))

    async def _expect(self, ctx: CommandContext, body: ParcelExpectBody) -> Any:
        req = Expect(waybill=body.waybill, size=Size(body.size), consent=body.consent,
                     fresh="fresh" in body.flags, valuable="valuable" in body.flags)
        return self._reply(await self.service.expect_parcel(ctx.carrier, req, ctx.commit))

    async def _recall(self, ctx: CommandContext, body: ParcelRecallBody) -> Any:
        return self._reply(await self.service.recall_parcel(ctx.carrier, body.waybill,
                                                            ctx.commit))
