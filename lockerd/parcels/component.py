"""The parcel flows as a daemon component: rebuilds the cabinet from the log, serves kiosks and carriers.

start()  reads the pickup-code and ID-number keys and the live state from the encrypted log,
         opens the ID-card reader when configured (lockerd/drivers/factory.py), rebuilds the
         cabinet (blocked compartments included), closes operations a crash left open (their
         door state is unknown: deposits rolled back, compartments blocked) and records door
         faults reported before it started.
run()    marks parcels past their storage period overdue and escalates incidents that stay
         open (lockerd/parcels/escalation.py), periodically.
The local API methods (panel.*, courier.login; lockerd/parcels/panel_api.py; the technician's
compartments.* and incidents: lockerd/parcels/tech_api.py) and the carrier commands
(courier.grant, courier.revoke, parcel.expect, parcel.recall; lockerd/parcels/carrier_commands.py)
are registered once, at build time. The component is also the cabinet view the sync component
reports on the retained `state` topic, and the blocked set the door controller reads: one
owner, so `doors.list`, the customer flows and `state` agree, before and after a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lockerd.api.server import ApiServer
from lockerd.app.events import Alert, AlertKind, EventBus, Severity
from lockerd.app.supervisor import Component
from lockerd.camera.intake import IntakeChanged
from lockerd.config import Carrier, Hardware, Size
from lockerd.domain import Cabinet, CabinetSpec, CabinetState, Clock, Compartment, Decision
from lockerd.domain.flows.maintenance import DOOR_STATE_UNKNOWN, HELD_KINDS
from lockerd.domain.limiter import CABINET_KEYS, Credential, cabinet_ladder, locked_until
from lockerd.domain.model import LIVE_STATUSES, Limiter, SetCompartment, SetLimiter
from lockerd.domain.timefmt import format_ts
from lockerd.doors.events import DoorFault, DoorStateChanged
from lockerd.drivers.factory import IdReaderSet, open_id_reader
from lockerd.parcels import carrier_commands, incidents, panel_api, panel_v2, tech_api
from lockerd.parcels.escalation import Escalator
from lockerd.parcels.identity import ID_KEY_NAME, IdentityChecks
from lockerd.parcels.kept_file import Entry, KeptFile
from lockerd.parcels.panel_ops import PanelOps
from lockerd.parcels.passes import PassVerifier
from lockerd.parcels.ports import Camera, Carriers, DoorWatch, IntakeGate, StoreHandle
from lockerd.parcels.service import ParcelService
from lockerd.parcels.store import load_state
from lockerd.sync.commands import CommandRegistry
from lockerd.sync.signing import load_hmac_key

log = logging.getLogger(__name__)

CODE_KEY_NAME = "pickup-code.hmac"


def _escalation_records(conn: Any) -> list[dict[str, Any]]:
    """Bodies of the escalation alerts in the chain, in order (to rebuild published tiers)."""
    rows = conn.execute("SELECT body FROM operations WHERE kind IN ('alert.raised', "
                        "'alert.cleared') AND body LIKE '%incident_escalated%' ORDER BY seq")
    return [json.loads(body) for (body,) in rows]


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

    def __init__(self, spec: CabinetSpec, *, close_timeout_s: float, log: StoreHandle, doors: DoorWatch,
                 gate: IntakeGate, camera: Camera | None, carriers: Carriers, bus: EventBus,
                 clock: Clock | None = None, sweep_interval_s: float = 30.0,
                 hardware: Hardware | None = None, carrier_cfg: Sequence[Carrier] = (),
                 escalation_hours: Sequence[float] = (24.0, 48.0, 72.0),
                 pass_keys: Mapping[str, bytes] | None = None,
                 kept_file: Path | None = None) -> None:
        """`kept_file`: the side file of door-cycle ends kept on a full disk (None: memory only)."""
        super().__init__()
        self.spec = spec
        self.clock: Clock = clock or AdjustableClock()
        self._log = log
        self._doors = doors
        self._gate = gate
        self._carriers = carriers
        self._bus = bus
        self._sweep_s = sweep_interval_s
        self._kept_path = kept_file
        self._code_key: bytes | None = None
        self._id_key: bytes | None = None
        self._hardware = hardware
        self._carrier_cfg = tuple(carrier_cfg)
        self.id_readers: IdReaderSet | None = None
        self.escalator = Escalator(escalation_hours, bus.publish)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._full = False
        self._early_faults: list[DoorFault] = []
        self._intake_closed_since: datetime | None = None
        # cabinet-wide limiters whose lockout raised a brute_force alert not yet cleared
        self._brute_force: set[str] = set()
        self.cabinet = Cabinet(spec, self.clock, secrets.SystemRandom(),
                               code_digest=self._code_digest)
        self.service = ParcelService(self.cabinet, log=log, doors=doors, gate=gate,
                                     events=carriers, camera=camera, observer=self,
                                     close_timeout_s=close_timeout_s)
        if pass_keys:
            self.service.passes = PassVerifier(pass_keys)
        bus.listen(self._on_door_fault, DoorFault)
        bus.listen(self._on_door_state, DoorStateChanged)
        bus.listen(self._on_intake, IntakeChanged)
        self.panel_ops = PanelOps(self.service, bus, gate)

    # ---- wiring ------------------------------------------------------------------------------

    def register_api(self, api: ApiServer) -> None:
        """panel.* and courier.login for kiosks (role panel); panel.v2.* for screens;
        compartments.* and incidents for technicians (role tech)."""
        panel_api.register(api, self.service)
        panel_v2.register(api, self.service, self.panel_ops)
        tech_api.register(api, self.service, self.incidents)

    def register_commands(self, registry: CommandRegistry) -> None:
        """The carrier commands that change the cabinet (docs/mqtt.md)."""
        carrier_commands.register(registry, self.service)

    # ---- the cabinet view carriers see (lockerd.sync.ports.CabinetView) ----------------------

    def intake(self) -> tuple[bool, str | None]:
        """Whether drop-offs are accepted now (the camera gate), and why not."""
        return self._gate.is_open(), self._gate.reason()

    def free_counts(self) -> dict[str, int]:
        """Free compartments per size, from the domain (excludes reserved/occupied/blocked)."""
        return self.cabinet.free_counts()

    def blocked(self) -> list[int]:
        """Blocked compartments, from the domain (the one owner of "blocked")."""
        return self.cabinet.blocked()

    # ---- the blocked set the door controller reads (lockerd.doors.ports.BlockedView) -----------

    def blocks(self) -> dict[int, Compartment]:
        """Blocked compartments with why, since when and by whom."""
        return self.cabinet.blocks()

    def incidents(self) -> list[dict[str, Any]]:
        """What needs a person, each with its age (`lockerctl incidents`)."""
        now = self.clock()
        reason = None if self._gate.is_open() else self._gate.reason()
        rows = [*incidents.cabinet_incidents(self.cabinet.state, now), *self._doors.incidents(),
                *incidents.camera_incident(reason, self._intake_closed_since, now)]
        return self.escalator.annotate(incidents.ordered(rows))

    def escalate(self) -> None:
        """Publish the tiers open incidents newly reached, close resolved ones (run loop; tests
        call it after moving the clock)."""
        if self._started:
            self.escalator.check(self.incidents())

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        store = self._log.store
        self._code_key = await store.secret(CODE_KEY_NAME)
        self._id_key = await store.secret(ID_KEY_NAME)
        self.escalator.restore(await store.read(_escalation_records))
        await self._start_identity()
        data = await store.read(load_state)
        state = CabinetState.model_validate(data)
        for cid, size in self.spec.compartments:
            state.compartments.setdefault(cid, Compartment(id=cid, size=Size(size)))
        self.cabinet.state = state
        live = sum(1 for p in state.parcels.values() if p.status in LIVE_STATUSES)
        log.info("parcel flows: %d live parcels, %d couriers restored", live, len(state.couriers))
        kept: list[Entry] = []
        if self._kept_path is not None:
            self.service.late.file = side = KeptFile(self._kept_path)
            kept = await asyncio.to_thread(side.open)
        recovered = await self.service.recover(kept)
        if recovered:
            log.warning("closed %d door operations left open by a restart", len(recovered))
        self._started = True
        early, self._early_faults = self._early_faults, []
        for fault in early:
            await self.service.door_fault(fault.compartment, fault.fault)
        if not self._gate.is_open() and self._intake_closed_since is None:
            self._intake_closed_since = self.clock()
        self._carriers.state_changed()
        self._check_full()

    async def run(self) -> None:
        while True:
            self.progress()
            try:
                await self.service.sweep_overdue()
            except Exception as exc:
                log.error("overdue sweep failed: %s", exc)
            self.clear_brute_force()
            try:
                self.escalate()
            except Exception as exc:
                log.error("incident escalation failed: %s", exc)
            await asyncio.sleep(self._sweep_s)

    async def _start_identity(self) -> None:
        """The identity checks: the reader (when configured), the carriers' real-name public
        keys and shared ID-hash keys."""
        if self.id_readers is None and self._hardware is not None:
            self.id_readers = await open_id_reader(self._hardware)
        hash_keys: dict[str, bytes] = {}
        for carrier in self._carrier_cfg:
            if carrier.id_hash_key_file is not None:
                hash_keys[carrier.id] = await asyncio.to_thread(load_hmac_key,
                                                                carrier.id_hash_key_file)
        realname = {c.id: bytes.fromhex(c.realname_public_key) for c in self._carrier_cfg
                    if c.realname_public_key is not None}
        self.service.identity = IdentityChecks(
            reader=None if self.id_readers is None else self.id_readers.reader,
            realname_keys=realname, carrier_hash_keys=hash_keys, cabinet_key=self._id_key_bytes,
            clock=self.clock, today=self._today)

    def _id_key_bytes(self) -> bytes:
        if self._id_key is None:
            raise RuntimeError("ID-number key not loaded (parcel flows not started)")
        return self._id_key

    def _today(self) -> date:
        """The cabinet's local date: an ID card is valid through its valid-to day there."""
        return self.clock().astimezone(ZoneInfo(self.spec.timezone)).date()

    async def stop(self) -> None:
        self._started = False
        if self.id_readers is not None:
            await self.id_readers.close()
            self.id_readers = None
        await self.panel_ops.stop()
        await self.service.late.stop()
        if self.service.late.file is not None:
            self.service.late.file.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def status(self) -> dict[str, Any]:
        live = [p for p in self.cabinet.state.parcels.values() if p.status in LIVE_STATUSES]
        return {"live_parcels": len(live), "free": self.cabinet.free_counts(),
                "blocked": self.cabinet.blocked(), "recorded": self.service.recorded,
                "unrecorded": len(self.service.late), "recorded_late": self.service.late.recorded_late}

    # ---- internals -----------------------------------------------------------------------------

    def _code_digest(self, code: str) -> str:
        """Keyed HMAC of a pickup code: equal codes give equal digests (uniqueness, lookup), and
        without the key (kept inside the encrypted log) a digest cannot be brute-forced."""
        if self._code_key is None:
            raise RuntimeError("pickup-code key not loaded (parcel flows not started)")
        return "hmac-sha256:" + hmac.new(self._code_key, code.encode(), hashlib.sha256).hexdigest()

    def recorded(self, decision: Decision) -> None:
        """The service recorded and applied `decision` (lockerd.parcels.ports.Observer)."""
        if decision.events:
            self._carriers.outbox_written()
        if any(isinstance(c, SetCompartment) for c in decision.changes):
            self._carriers.state_changed()
            self._check_full()
        if decision.notify_operator:
            log.warning("operator: %s (%s)", decision.notify_operator, decision.record.kind)
        if decision.ok and decision.record.kind in HELD_KINDS:
            # a deposit a restart left open is inside: its carrier must send a person
            self._bus.publish(Alert(
                AlertKind.DEPOSIT_UNCONFIRMED, Severity.WARNING, True,
                "a deposit left open by a restart reads closed on an item; held for staff",
                compartment=decision.record.compartment))
        released = decision.result.get("released") if decision.ok else None
        for kind in (AlertKind.DOOR_JAMMED, AlertKind.DOOR_FORCED, AlertKind.DEPOSIT_UNCONFIRMED):
            if released == kind.value:
                # the door controller raised it; the domain owns the block, so it clears it
                self._bus.publish(Alert(kind, Severity.INFO, False, "compartment released",
                                        compartment=decision.record.compartment))
        for change in decision.changes:
            if isinstance(change, SetLimiter) and change.value.panel in CABINET_KEYS.values():
                self._raise_brute_force(change.value)

    def _raise_brute_force(self, lim: Limiter) -> None:
        """A cabinet-wide limiter that starts a lockout: every panel is locked out of that
        credential, staff and carriers are told (a failure is only ever counted while no lockout
        runs, so a lockout ending in the future has just begun)."""
        if lim.locked_until is None or lim.locked_until <= self.cabinet.now():
            return
        what = "codes" if lim.panel == CABINET_KEYS[Credential.CODE] else "PINs"
        self._brute_force.add(lim.panel)
        ladder = cabinet_ladder(self.spec.policy)
        detail = (f"{ladder.limit} wrong {what} within {ladder.window} from all panels: every panel "
                  f"is locked out of {what} until {format_ts(lim.locked_until)} "
                  f"(lockout {lim.lockouts})")
        log.warning("brute force suspected: %s", detail)
        self._bus.publish(Alert(AlertKind.BRUTE_FORCE, Severity.CRITICAL, True, detail))

    def clear_brute_force(self) -> None:
        """Clear the brute_force alert once no cabinet-wide lockout runs any more."""
        if not self._brute_force:
            return
        now = self.cabinet.now()
        ended = {key for key in self._brute_force
                 if locked_until(self.cabinet.state.limiters.get(key), now) is None}
        self._brute_force -= ended
        if ended and not self._brute_force:
            self._bus.publish(Alert(AlertKind.BRUTE_FORCE, Severity.INFO, False,
                                    "cabinet-wide lockout over"))

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

    def _on_door_fault(self, fault: DoorFault) -> None:
        """A jammed, forced or left-open door: the domain records the block (write-ahead)."""
        if not self._started:
            self._early_faults.append(fault)
            return
        task = asyncio.get_running_loop().create_task(
            self.service.door_fault(fault.compartment, fault.fault), name="parcels:door-fault")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_door_state(self, event: DoorStateChanged) -> None:
        """A door read again: settle a compartment held because its state was unknown."""
        if not self._started or event.new.value == "unknown":
            return
        comp = self.cabinet.state.compartments.get(event.compartment)
        if comp is None or comp.blocked_reason != DOOR_STATE_UNKNOWN:
            return
        task = asyncio.get_running_loop().create_task(
            self.service.door_state_known(event.compartment, event.new.value == "open"),
            name="parcels:door-known")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_intake(self, event: IntakeChanged) -> None:
        """Note since when intake has been closed (the camera_down incident's age)."""
        if event.open:
            self._intake_closed_since = None
        elif self._intake_closed_since is None:
            self._intake_closed_since = self.clock()
