"""The daemon: builds the components from config, runs them under a supervisor, talks to systemd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockerd import __version__
from lockerd.api.server import ALL_ROLES, ApiServer, Caller
from lockerd.app import eventloop
from lockerd.app.condition import CabinetCondition, Sources
from lockerd.app.events import EventBus
from lockerd.app.health import HealthSnapshots
from lockerd.app.oplog_ports import OplogPorts
from lockerd.app.sdnotify import Notifier, watchdog_interval
from lockerd.app.supervisor import CabinetState, Component, CriticalStartFailure, Supervisor
from lockerd.app.ticks import next_tick
from lockerd.camera.intake import EvidencePlace, IntakeChanged
from lockerd.config import Config, ConfigError, load_config
from lockerd.doors.api import DoorsApi
from lockerd.doors.commissioning import BoardCommissioning
from lockerd.doors.controller import DoorController
from lockerd.drivers.factory import build_hardware
from lockerd.gpio.monitor import GpioMonitor
from lockerd.oplog.component import OplogComponent
from lockerd.parcels import passes
from lockerd.parcels.component import ParcelFlows
from lockerd.parcels.kept_file import KEPT_FILE_NAME
from lockerd.parcels.ports import IntakeGate
from lockerd.parcels.spec_from_config import cabinet_spec
from lockerd.sync import reports
from lockerd.sync.component import SyncComponent
from lockerd.sync.feed import CarrierFeed
from lockerd.sync.topics import Topics

if TYPE_CHECKING:
    from lockerd.camera.guard import CameraGuard

log = logging.getLogger(__name__)

EVIDENCE_DB = "evidence.db"
"""The camera's evidence snapshots, inside the state directory."""


class _ClosedGate:
    """Intake without a camera: drop-offs need the camera guard (Art. 18-19), so always closed."""

    def is_open(self) -> bool:
        return False

    def reason(self) -> str | None:
        return "camera_disabled"


class Daemon:
    """One cabinet controller. `run()` returns the process exit code."""

    def __init__(self, cfg: Config, config_path: Path | None = None,
                 notifier: Notifier | None = None) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.events = EventBus()
        self.supervisor = Supervisor()
        self.api = ApiServer(cfg.api, cfg.paths.socket)
        self.started_at = time.monotonic()
        self._stop = asyncio.Event()
        self._watchdog_blocked = False
        self._last_state: tuple[CabinetState, tuple[tuple[str, str], ...]] | None = None
        self.components: dict[str, Component] = {}
        #: ready or degraded and why (built with the subsystems it reads)
        self.condition: CabinetCondition | None = None

    def add(self, component: Component) -> None:
        """Register a component (start order = registration order)."""
        self.components[component.name] = component
        self.supervisor.add(component)

    def build(self) -> list[Component]:
        """Create the subsystems the configuration asks for and hand them to the supervisor.

        The order of the list is the start order (stops run in reverse): the operation log
        first (nothing may happen unrecorded), the API server last (no request before every
        component it serves exists). Real or simulated hardware is the driver factory's choice.
        """
        cfg = self.cfg
        hardware = build_hardware(cfg.hardware, cfg.camera, cfg.gpio, state_dir=cfg.paths.state_dir)
        self.api.route("status", ALL_ROLES, None, self._api_status)
        self.oplog = OplogComponent(cfg.oplog, cfg.paths, self.api, cabinet=cfg.cabinet,
                                    compartments=cfg.compartments, bus=self.events)
        oplog = OplogPorts(self.oplog)
        self.doors = DoorController(cfg.doors, cfg.compartments, self.events, hardware.boards,
                                    door_switches=cfg.gpio.switched_compartments())
        DoorsApi(self.doors, oplog).register(self.api)
        BoardCommissioning(self.doors, cfg.compartments, cfg.doors, controller=self.doors,
                           recorder=oplog).register_api(self.api)
        self.camera: CameraGuard | None = None
        if hardware.frame_source is not None:
            from lockerd.camera.guard import CameraGuard

            self.camera = CameraGuard(cfg.camera, hardware.frame_source, self.events,
                                      evidence=EvidencePlace(cfg.paths.state_dir / EVIDENCE_DB,
                                                             oplog))
            self.camera.register_api(self.api)
        # the flows write carrier events through the feed, sync reports the flows' free compartments
        feed = CarrierFeed(Topics(self.cfg.mqtt.prefix, self.cfg.cabinet.id))
        self.parcels = self._parcel_flows(feed)
        self.sync = SyncComponent(self.cfg.mqtt, self.cfg.cabinet, self.cfg.carriers,
                                  log=self.oplog, bus=self.events, feed=feed, view=self.parcels,
                                  anchors=self.oplog.anchors.board)
        self.events.listen(lambda _e: feed.state_changed(), IntakeChanged)
        # ready or degraded and why: one source for `status`, STATUS= and the health message
        self.condition = condition = self._condition()
        # fleet health telemetry: the snapshot is built here, where every owner is reachable
        self.health = HealthSnapshots(
            supervisor=self.supervisor, condition=condition,
            boards=lambda: self.doors.status()["boards"],
            camera=self.camera, incidents=self.parcels, backlog=self.sync,
            log_path=self.oplog.path, version=__version__, bus=self.events,
            clock=lambda: self.sync.clock())  # noqa: PLW0108 - the demo moves the clock
        self.sync.attach_health(self.health)
        # the domain owns "blocked": the door controller reads it from the parcel flows
        self.doors.attach_blocks(self.parcels)
        # --- parcel flows (issue 5): after doors, camera and sync; before the API server
        self.parcels.register_api(self.api)
        self.parcels.register_commands(self.sync.registry)
        reports.register(self.sync.registry, self.oplog,
                         platforms=[c.id for c in self.cfg.carriers if c.platform],
                         max_bytes=self.cfg.mqtt.max_report_bytes)
        self.sync.maintenance.register_api(self.api)
        # --- end parcel flows
        gpio: GpioMonitor | None = None
        if cfg.gpio.enabled:
            gpio = GpioMonitor(cfg.gpio, self.events, doors=self.doors,
                               pin_factory=hardware.pin_factory)
        subsystems: list[Component | None] = [self.oplog, self.doors, self.camera, self.sync,
                                              self.parcels, gpio, self.api]
        for component in subsystems:
            if component is not None:
                self.add(component)
        return list(self.components.values())

    def _built_condition(self) -> CabinetCondition:
        if self.condition is None:
            raise RuntimeError("build() makes the condition")
        return self.condition

    def _condition(self) -> CabinetCondition:
        """The cabinet's condition over the owners' public faces."""
        camera = self.camera
        mqtt_on = self.cfg.mqtt.enabled

        def writer_timing() -> tuple[float, float, float] | None:
            return self.oplog.store.writer_timing() if self.oplog.status()["open"] else None

        def clock_problem() -> str | None:
            return self.oplog.store.guard.problem() if self.oplog.status()["open"] else None

        sources = Sources(
            supervisor=self.supervisor, boards=lambda: self.doors.status()["boards"],
            camera_verdict=lambda: None if camera is None else str(camera.status()["verdict"]),
            link_up=lambda: bool(self.sync.status()["connected"]) if mqtt_on else None,
            writer_timing=writer_timing, clock_problem=clock_problem)
        return CabinetCondition(sources, link_down_degraded_s=self.cfg.mqtt.link_down_degraded_s,
                                slow_commit_s=self.cfg.oplog.slow_commit_s,
                                clock=lambda: self.sync.clock())  # noqa: PLW0108 - demo clock

    # --- parcel flows (issue 5)
    def _parcel_flows(self, feed: CarrierFeed) -> ParcelFlows:
        """The parcel flows over the real doors, camera gate, log and carrier feed."""
        gate: IntakeGate = self.camera if self.camera is not None else _ClosedGate()
        return ParcelFlows(cabinet_spec(self.cfg),
                           close_timeout_s=self.cfg.doors.close_timeout_s, log=self.oplog,
                           doors=self.doors, gate=gate, camera=self.camera, carriers=feed,
                           bus=self.events, hardware=self.cfg.hardware,
                           carrier_cfg=self.cfg.carriers,
                           escalation_hours=self.cfg.escalation.tiers_hours,
                           pass_keys=passes.public_keys(self.cfg.carriers),
                           kept_file=self.cfg.paths.state_dir / KEPT_FILE_NAME)
    # --- end parcel flows

    async def _api_status(self, _params: Any, _caller: Caller) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        """Cabinet identity, overall state with its reasons, every component's status; no
        personal data."""
        cab = self.cfg.cabinet
        cond = self.condition
        reasons = [] if cond is None else cond.reasons()
        state = self.supervisor.cabinet_state() if cond is None else cond.state(reasons)
        now = datetime.now(UTC) if cond is None else self.sync.clock()
        return {
            "cabinet": {"id": cab.id, "name": cab.name,
                        "registration_number": cab.registration_number},
            "version": __version__,
            "state": state.value,
            "reasons": [r.as_dict(now) for r in reasons],
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "backend": self.cfg.hardware.backend,
            "components": self.supervisor.status(),
        }

    def request_stop(self) -> None:
        """Ask the daemon to shut down cleanly (signal handlers, demo, tests)."""
        self._stop.set()

    async def run(self) -> int:
        """Start everything, serve until SIGTERM/SIGINT, stop everything; 0 on a clean stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._reload)
        self.build()
        try:
            try:
                await self.supervisor.start_all()
            except CriticalStartFailure as exc:
                log.error("cannot start: %s", exc)
                self.notifier.status(f"failed: {exc}")
                return 1
            state = self._built_condition().state()
            self.notifier.ready(self._built_condition().summary())
            log.info("lockerd %s %s (cabinet %s, %s backend, %s event loop)", __version__,
                     state.value, self.cfg.cabinet.id, self.cfg.hardware.backend,
                     type(loop).__module__.split(".")[0])
            async with asyncio.TaskGroup() as tg:
                loops = [tg.create_task(self._watchdog_loop(), name="watchdog"),
                         tg.create_task(self._state_loop(), name="state")]
                await self._stop.wait()
                for task in loops:
                    task.cancel()
        finally:
            self.notifier.stopping()
            log.info("lockerd stopping")
            await self.supervisor.stop_all()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(sig)
        log.info("lockerd stopped")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s, shutting down", sig.name)
        self._stop.set()

    def _reload(self) -> None:
        """SIGHUP: re-validate the config file; a bad one is reported and the running one kept."""
        if self.config_path is None:
            return
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for line in exc.problems:
                log.error("reload refused, keeping the running config: %s", line)
            return
        logging.getLogger().setLevel(new.logging.level)
        changed = [name for name in type(new).model_fields
                   if getattr(new, name) != getattr(self.cfg, name) and name != "logging"]
        if changed:
            log.warning("config reloaded; changes to %s take effect after a restart",
                        ", ".join(changed))
        else:
            log.info("config reloaded; no changes")

    async def _watchdog_loop(self) -> None:
        """WATCHDOG=1 at half WATCHDOG_USEC, only while every component makes progress."""
        interval = watchdog_interval()
        if interval is None or not self.notifier.enabled:
            await asyncio.Event().wait()
            return
        while True:
            if self.supervisor.healthy_for_watchdog():
                self.notifier.watchdog()
                if self._watchdog_blocked:
                    log.info("components make progress again; watchdog fed")
                self._watchdog_blocked = False
            elif not self._watchdog_blocked:
                log.error("a component stopped making progress; withholding the watchdog ping")
                self._watchdog_blocked = True
            await asyncio.sleep(interval)

    async def _state_loop(self) -> None:
        """Keep systemd's STATUS= line in step with the cabinet's state and reasons; log each
        change once (a warning while degraded)."""
        cond = self._built_condition()
        while True:
            reasons = cond.reasons()
            state = cond.state(reasons)
            shown = (state, tuple((r.code, r.subject) for r in reasons))
            if shown != self._last_state:
                self._last_state = shown
                line = cond.summary()
                self.notifier.status(line)
                if state == CabinetState.DEGRADED:
                    log.warning("cabinet %s", line)
                elif state == CabinetState.READY:
                    log.info("cabinet ready")
            await next_tick(1.0)


def run_daemon(cfg: Config, config_path: Path | None) -> int:
    """Entry point for `lockerd run`: the daemon's exit code, on the loop of app/eventloop.py."""
    return eventloop.run(Daemon(cfg, config_path).run())
