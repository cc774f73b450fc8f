"""SyncComponent: carrier sync over MQTT (status, state, alerts, outbox drain, commands)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import lockerd
from lockerd.app.events import Alert, AlertKind, EventBus, Severity, Subscription
from lockerd.app.supervisor import Component
from lockerd.config import Cabinet as CabinetConfig
from lockerd.config import Carrier, Mqtt
from lockerd.oplog import OpLog
from lockerd.oplog.anchoring import AnchorBoard
from lockerd.sync.alerts import record_alert
from lockerd.sync.commands import CommandContext, CommandProcessor, CommandRegistry
from lockerd.sync.feed import CarrierFeed
from lockerd.sync.health import HealthPublisher, HealthSource
from lockerd.sync.link import LinkCallbacks, MqttLink, TlsFiles, Will
from lockerd.sync.maintenance import Maintenance
from lockerd.sync.payloads import AnchorPayload, FreeCounts, Intake, StatePayload, StatusOffline, StatusOnline
from lockerd.sync.ports import CabinetView, LogHandle
from lockerd.sync.publisher import OutboxPublisher
from lockerd.sync.signing import load_hmac_key
from lockerd.sync.topics import Topics

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0
#: While an interruption is planned, the status is rechecked this often (a wall-clock step, as
#: at a Pi's first NTP sync, must not leave a stale notice up); with none planned, never.
MAINTENANCE_RECHECK_S = 1.0


def _json(model: Any) -> bytes:
    return model.model_dump_json().encode("utf-8")  # type: ignore[no-any-return]


class SyncComponent(Component):
    """Keeps carriers informed and obeys their commands; the outbox is the only truth.

    With `[mqtt] enabled = false` it still records alerts into the outbox and watches the
    backlog (the cabinet works offline; everything is sent once a broker is configured).
    """

    name = "sync"

    def __init__(self, mqtt: Mqtt, cabinet: CabinetConfig, carriers: Sequence[Carrier], *,
                 log: LogHandle, bus: EventBus, feed: CarrierFeed, view: CabinetView,
                 registry: CommandRegistry | None = None, version: str | None = None,
                 clock: Callable[[], datetime] | None = None,
                 anchors: AnchorBoard | None = None) -> None:
        super().__init__()
        self._mqtt = mqtt
        self._cabinet = cabinet
        self._carriers = tuple(carriers)
        self._log = log
        self.bus = bus
        self.feed = feed
        self._view = view
        #: the log's signed heads, published retained on `chain` (docs/oplog.md "Anchors")
        self._anchors = anchors
        self.registry = registry if registry is not None else CommandRegistry()
        self.version = version or lockerd.__version__
        self.clock = clock or (lambda: datetime.now(UTC))
        self.link: MqttLink | None = None
        self.publisher: OutboxPublisher | None = None
        self.processor: CommandProcessor | None = None
        #: fleet health telemetry, once the daemon attaches its snapshot source
        self.health: HealthPublisher | None = None
        self._inbox: asyncio.Queue[tuple[str, bytes, int, int]] = asyncio.Queue()
        self._alerts: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_state = 0.0
        self._backlog = (0, 0.0)
        self._backlog_alert = False
        self.last_error: str | None = None
        self._maintenance_due = asyncio.Event()
        #: planned interruptions announced on the retained status (guidance 004 §7)
        # the clock is read through the component, so a test or the demo can move it
        self.maintenance = Maintenance(lambda: self.oplog, lambda: self.clock(),  # noqa: PLW0108
                                       self._maintenance_due.set)
        if "state.get" not in self.registry.types:
            self.registry.register("state.get", self._state_get)

    @property
    def topics(self) -> Topics:
        """This cabinet's topic names."""
        return self.feed.topics

    @property
    def oplog(self) -> OpLog:
        """The operation log this component records commands and alerts in (open once the
        oplog component has started)."""
        return self._log.store

    # ------------------------------------------------------------------ public helpers

    def wake(self) -> None:
        """Outbox rows were committed: publish them now (call after OpLog.append with outbox)."""
        self.feed.outbox_written()

    def state_changed(self) -> None:
        """Cabinet state changed: republish the retained state (rate-limited)."""
        self.feed.state_changed()

    def current_state(self) -> StatePayload:
        """The retained `state` payload: intake, free compartments by size, blocked ids."""
        is_open, reason = self._view.intake()
        return StatePayload(ts=self.clock(), intake=Intake(open=is_open, reason=reason),
                            free=FreeCounts(**self._view.free_counts()),
                            blocked=self._view.blocked())

    def attach_health(self, source: HealthSource) -> None:
        """Publish the retained `health` topic from `source` (call before start)."""
        self.health = HealthPublisher(source, lambda: self.link, self.topics.health,
                                      interval_s=self._mqtt.health_interval_s,
                                      min_gap_s=self._mqtt.health_min_interval_s)

    def backlog(self) -> tuple[int, float]:
        """Unsent outbox messages and the oldest one's age in seconds (as last measured)."""
        return self._backlog

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        cfg = self._mqtt
        await self.maintenance.load()
        keys: dict[str, bytes | None] = {}
        for carrier in self._carriers:
            keys[carrier.id] = None if carrier.hmac_key_file is None else \
                await asyncio.to_thread(load_hmac_key, carrier.hmac_key_file)
        self.processor = CommandProcessor(self.oplog, self.topics, self.registry,
                                          carrier_keys=keys, max_bytes=cfg.max_command_bytes,
                                          clock=self.clock,
                                          future_limit_s=cfg.command_future_s)
        if cfg.enabled:
            tls = TlsFiles(cfg.ca_file, cfg.cert_file, cfg.key_file) if cfg.tls else None
            will = Will(self.topics.status, _json(StatusOffline(ts=self.clock())))
            self.link = MqttLink(
                host=cfg.host, port=cfg.port, client_id=cfg.client_id or f"lockerd-{self._cabinet.id}",
                keepalive_s=cfg.keepalive_s, tls=tls, will=will, protocol=cfg.protocol,
                session_expiry_s=cfg.session_expiry_s, reconnect_min_s=cfg.reconnect_min_s,
                reconnect_max_s=cfg.reconnect_max_s, max_inflight=cfg.inflight_window,
                callbacks=LinkCallbacks(on_connect=self._on_connect,
                                        on_disconnect=self._on_disconnect,
                                        on_message=self._on_message, on_puback=self._on_puback))
        self.publisher = OutboxPublisher(self.oplog, self.link, wake=self.feed.written,
                                         window=cfg.inflight_window,
                                         idle_poll_s=cfg.idle_poll_ms / 1000)
        self._alerts = self.bus.subscribe(Alert, maxsize=10000)
        if self.link is not None:
            await self.link.start()
        loop = asyncio.get_running_loop()
        if self.health is not None:
            self._tasks.append(loop.create_task(self.health.run(), name="sync:health"))
        for coro, name in ((self.publisher.run(), "drain"), (self._commands(), "commands"),
                           (self._forward_alerts(), "alerts"), (self._watch_backlog(), "backlog"),
                           (self._state_loop(), "state"), (self._prune_loop(), "prune"),
                           (self._maintenance_loop(), "maintenance"),
                           (self._chain_loop(), "chain")):
            self._tasks.append(loop.create_task(coro, name=f"sync:{name}"))

    async def run(self) -> None:
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            exc = task.exception()
            if exc is not None:
                self.last_error = f"{task.get_name()}: {exc}"
                raise exc
        raise RuntimeError("sync tasks ended")

    async def stop(self) -> None:
        """Finish queued commands, flush acks, publish offline status, disconnect. Idempotent."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._alerts is not None:
            self._alerts.close()
            self._alerts = None
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await self.publisher.flush_marks()
        if self.link is not None:
            link, self.link = self.link, None
            await link.stop(final=(self.topics.status, _json(StatusOffline(ts=self.clock())), True))

    def status(self) -> dict[str, Any]:
        pub = self.publisher
        link = self.link
        count, age = self._backlog
        return {
            "enabled": self._mqtt.enabled,
            "connected": bool(link and link.connected),
            "protocol": link.protocol if link else None,
            "broker": f"{link.host}:{link.port}" if link else None,
            "backlog": count,
            "backlog_age_s": round(age, 1),
            "backlog_alert": self._backlog_alert,
            "inflight": pub.inflight if pub else 0,
            "published": pub.published if pub else 0,
            "acked": pub.acked if pub else 0,
            "commands": self.processor.handled if self.processor else 0,
            "commands_refused": self.processor.refused if self.processor else 0,
            "health_published": self.health.published if self.health else 0,
            "last_error": self.last_error or (link.last_error if link else None)
                          or (pub.last_error if pub else None),
        }

    # ------------------------------------------------------------------ link callbacks (loop)

    def _on_connect(self, _session_present: bool) -> None:
        link = self.link
        if link is None:
            return
        link.subscribe(self.topics.cmd_filter, 1)
        link.publish(self.topics.status, self._birth(), 1, True)
        self._last_state = 0.0
        self.feed.state_changed()
        if self._anchors is not None:
            self._anchors.changed.set()  # a broker that lost its retained anchor gets it again
        if self.health is not None:
            self.health.connected()
        if self.publisher is not None:
            self.publisher.on_connect()

    def _on_disconnect(self, reason: str) -> None:
        self.last_error = None
        if self.publisher is not None:
            self.publisher.on_disconnect()

    def _on_message(self, topic: str, payload: bytes, mid: int, qos: int) -> None:
        self._inbox.put_nowait((topic, payload, mid, qos))

    def _on_puback(self, mid: int, refused: bool) -> None:
        if self.publisher is not None:
            self.publisher.on_puback(mid, refused)
        self.progress()

    def _birth(self) -> bytes:
        """The retained online status, with the maintenance notice while one is planned."""
        now = self.clock()
        plan = self.maintenance.current()
        birth = StatusOnline(ts=now, version=self.version, name=self._cabinet.name,
                             address=self._cabinet.address,
                             maintenance=None if plan is None else plan.notice(now))
        return birth.model_dump_json(exclude_none=True).encode("utf-8")

    # ------------------------------------------------------------------ tasks

    async def _maintenance_loop(self) -> None:
        """Republish the status when a plan changes, and when its interruption starts and ends.

        With no plan it sleeps until one is made (an idle cabinet wakes for nothing); with one it
        wakes at the next start or end, and at least every MAINTENANCE_RECHECK_S so a clock step
        cannot leave a stale notice up. `asyncio.timeout`, not `wait_for`: no task per wait."""
        due = self._maintenance_due
        shown: tuple[object, bool] | None = None
        while True:
            plan = self.maintenance.current()
            now = self.clock()
            change = None if plan is None else plan.next_change(now)
            wait = (None if plan is None else MAINTENANCE_RECHECK_S if change is None
                    else min(MAINTENANCE_RECHECK_S, max(0.0, (change - now).total_seconds())))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await due.wait()
            forced = due.is_set()
            due.clear()
            plan = self.maintenance.current()
            state = (plan, plan is not None and plan.starts <= self.clock())
            link = self.link
            if (forced or state != shown) and link is not None and link.connected:
                link.publish(self.topics.status, self._birth(), 1, True)
                shown = state

    async def _chain_loop(self) -> None:
        """Publish each new anchor retained on `chain` (QoS 1); the latest one again after a
        reconnect. Only the newest matters there: every anchor is also saved in the cabinet's
        anchor state, and `parcel.*` events carry their own."""
        board = self._anchors
        if board is None:
            await asyncio.Event().wait()
            return
        while True:
            await board.changed.wait()
            board.changed.clear()
            link, anchor = self.link, board.latest
            if link is None or not link.connected or anchor is None:
                continue
            try:
                payload = AnchorPayload.model_validate(anchor.to_json())
                link.publish(self.topics.chain, _json(payload), 1, True)
            except Exception as exc:
                self.last_error = f"anchor not published: {exc}"
                log.error("cannot publish the chain anchor: %s", exc)

    async def _commands(self) -> None:
        assert self.processor is not None
        while True:
            topic, payload, mid, qos = await self._inbox.get()
            try:
                await self.processor.handle(topic, payload)
            except Exception as exc:
                # Not acknowledged: the broker redelivers after a reconnect; the id memory
                # makes that safe.
                self.last_error = f"command processing failed: {exc}"
                log.error("command on %s could not be processed: %s", topic[:200], exc)
                continue
            if self.link is not None:
                self.link.ack(mid, qos)
            self.wake()

    async def _forward_alerts(self) -> None:
        assert self._alerts is not None
        while True:
            alert = await self._alerts.get()
            while True:
                try:
                    await record_alert(self.oplog, self.topics, alert, self.wake)
                    break
                except Exception as exc:
                    self.last_error = f"alert not recorded: {exc}"
                    log.error("cannot record alert %s: %s", alert.kind, exc)
                    await asyncio.sleep(1.0)

    async def _watch_backlog(self) -> None:
        threshold = self._mqtt.backlog_alert_s
        period = min(5.0, max(0.2, threshold / 4))
        while True:
            count, oldest = await self.oplog.outbox_stats()
            age = (self.clock() - oldest).total_seconds() if oldest is not None else 0.0
            self._backlog = (count, max(0.0, age))
            self.progress()
            if not self._backlog_alert and count and age > threshold:
                self._backlog_alert = True
                log.warning("sync backlog: %d messages, oldest %.0f s", count, age)
                self.bus.publish(Alert(AlertKind.SYNC_BACKLOG, Severity.WARNING, True,
                                       f"{count} messages waiting, oldest {age:.0f} s"))
            elif self._backlog_alert and age <= threshold:
                self._backlog_alert = False
                log.info("sync backlog cleared (%d messages waiting)", count)
                self.bus.publish(Alert(AlertKind.SYNC_BACKLOG, Severity.INFO, False,
                                       f"backlog cleared ({count} messages waiting)"))
            await asyncio.sleep(period)

    async def _state_loop(self) -> None:
        min_gap = self._mqtt.state_min_interval_s
        due = self.feed.state_due
        while True:
            await due.wait()
            wait = self._last_state + min_gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            due.clear()
            link = self.link
            if link is None or not link.connected:
                continue
            try:
                state = self.current_state()
                link.publish(self.topics.state, _json(state), 1, True)
                self._last_state = time.monotonic()
            except Exception as exc:
                self.last_error = f"state not published: {exc}"
                log.error("cannot publish state: %s", exc)

    async def _prune_loop(self) -> None:
        retention = timedelta(hours=self._mqtt.sent_retention_h)
        while True:
            try:
                await self.oplog.outbox_prune(self.clock() - retention)
                await self.oplog.commands_prune()
            except Exception as exc:
                log.error("outbox prune failed: %s", exc)
            await asyncio.sleep(PRUNE_EVERY_S)

    async def _state_get(self, _ctx: CommandContext, _body: Any) -> Any:
        return self.current_state().model_dump(mode="json")
