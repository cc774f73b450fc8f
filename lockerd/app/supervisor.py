"""Component lifecycle and the supervisor that starts, restarts and stops components in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from enum import StrEnum
from typing import Any

from lockerd.privacy import own_words

log = logging.getLogger(__name__)


class Component:
    """One feature of the daemon with a small lifecycle (Moonraker-style).

    start()  acquires resources; raising fails the start (retried with backoff).
    run()    the long-running body; returning or raising is a crash, restarted with backoff.
    stop()   idempotent, leaves outputs safe (relays off, log flushed).
    status() a JSON-able dict for `lockerctl status`.

    A component with `progress_deadline` set must call `progress()` at least that often
    while running, or the systemd watchdog stops being fed (a stuck bus or writer).
    """

    name: str = "component"
    progress_deadline: float | None = None
    critical: bool = False

    def __init__(self) -> None:
        self._last_progress = time.monotonic()

    async def start(self) -> None:
        """Acquire resources."""

    async def run(self) -> None:
        """Serve until cancelled."""
        await asyncio.Event().wait()

    async def stop(self) -> None:
        """Release resources, leave outputs safe."""

    def status(self) -> dict[str, Any]:
        """Status for people and scripts; no personal data."""
        return {}

    def degraded(self) -> list[str]:
        """Why a running component cannot do its whole job (e.g. `oplog_corrupt`); [] when it
        can. Any reason makes the cabinet `degraded` though every component runs."""
        return []

    def progress(self) -> None:
        """Mark that the component is making progress (feeds the watchdog)."""
        self._last_progress = time.monotonic()

    def stalled(self, now: float) -> bool:
        """True when the component promised progress and has not made any in time."""
        if self.progress_deadline is None:
            return False
        return now - self._last_progress > self.progress_deadline


class CriticalStartFailure(Exception):
    """A critical component (operation log, API) could not start: the daemon must not run."""

    def __init__(self, component: str, error: str, *, own_words: bool = False) -> None:
        super().__init__(f"{component}: {error}")
        self.component = component
        self.error = error
        #: the start error was in lockerd's own words (lockerd.privacy.own_words): log it whole
        self.own_words = own_words


class CabinetState(StrEnum):
    """Overall state reported to systemd and carriers (Klipper-style explicit states)."""

    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    SHUTDOWN = "shutdown"


class ComponentState(StrEnum):
    """Where one supervised component is."""

    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


class _Slot:
    def __init__(self, component: Component) -> None:
        self.component = component
        self.state = ComponentState.STARTING
        self.restarts: deque[float] = deque()
        self.last_error: str | None = None
        self.start_error: BaseException | None = None
        self.task: asyncio.Task[None] | None = None


class Supervisor:
    """Starts components in order, restarts a crashed one within a budget, stops in reverse.

    One failing component logs and backs off; the daemon keeps serving (the cabinet is
    `degraded`). A component that exhausts its restart budget is left `failed`.
    """

    def __init__(self, *, backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 budget: int = 5, budget_window: float = 600.0) -> None:
        self._slots: list[_Slot] = []
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._budget = budget
        self._budget_window = budget_window
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, component: Component) -> None:
        """Register a component; order of registration is start order."""
        self._slots.append(_Slot(component))

    @property
    def components(self) -> list[Component]:
        """Registered components in start order."""
        return [s.component for s in self._slots]

    def get(self, name: str) -> Component | None:
        """The component with that name."""
        return next((s.component for s in self._slots if s.component.name == name), None)

    async def start_all(self, first_start_timeout: float = 10.0) -> None:
        """Start every component in order and launch their run loops.

        A component whose first start fails is retried with backoff, except a critical one
        (no operation log means no operation may happen): CriticalStartFailure, after the
        components already started were stopped again.
        """
        for slot in self._slots:
            ok = await self._start_once(slot, first_start_timeout)
            if not ok and slot.component.critical:
                await self.stop_all()
                raise CriticalStartFailure(slot.component.name,
                                           (slot.last_error or "").removeprefix("start failed: "),
                                           own_words=own_words(slot.start_error))
            task = asyncio.create_task(self._supervise(slot, started=ok),
                                       name=f"supervise:{slot.component.name}")
            slot.task = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _start_once(self, slot: _Slot, limit_s: float) -> bool:
        comp = slot.component
        slot.state = ComponentState.STARTING
        try:
            async with asyncio.timeout(limit_s):
                await comp.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            slot.last_error = f"start failed: {exc}"
            slot.start_error = exc
            log.warning("component %s failed to start: %s", comp.name, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))
            with contextlib.suppress(Exception):
                await comp.stop()
            return False
        comp.progress()
        slot.state = ComponentState.RUNNING
        return True

    async def _supervise(self, slot: _Slot, *, started: bool) -> None:
        comp = slot.component
        delay = self._backoff_initial
        while not self._stopping:
            if not started:
                if not self._spend_budget(slot):
                    slot.state = ComponentState.FAILED
                    log.error("component %s failed for good (restart budget spent): %s",
                              comp.name, slot.last_error)
                    return
                slot.state = ComponentState.BACKOFF
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max)
                started = await self._start_once(slot, 10.0)
                if not started:
                    continue
                log.info("component %s recovered", comp.name)
            try:
                await comp.run()
                slot.last_error = "run() returned"
                log.warning("component %s stopped running; restarting", comp.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                slot.last_error = f"crashed: {type(exc).__name__}: {exc}"
                log.error("component %s crashed: %s", comp.name, exc, exc_info=True)
            with contextlib.suppress(Exception):
                await comp.stop()
            started = False

    def _spend_budget(self, slot: _Slot) -> bool:
        now = time.monotonic()
        while slot.restarts and now - slot.restarts[0] > self._budget_window:
            slot.restarts.popleft()
        if len(slot.restarts) >= self._budget:
            return False
        slot.restarts.append(now)
        return True

    async def stop_all(self) -> None:
        """Stop every component in reverse order; every stop runs even if one raises."""
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for slot in reversed(self._slots):
            try:
                async with asyncio.timeout(10):
                    await slot.component.stop()
            except Exception as exc:
                log.error("component %s failed to stop cleanly: %s", slot.component.name, exc)
            slot.state = ComponentState.STOPPED

    def cabinet_state(self) -> CabinetState:
        """ready when every component runs; degraded when any does not."""
        if self._stopping:
            return CabinetState.SHUTDOWN
        states = {s.state for s in self._slots}
        if states <= {ComponentState.RUNNING}:
            return CabinetState.DEGRADED if self.degraded_reasons() else CabinetState.READY
        if ComponentState.STARTING in states and len(states) == 1:
            return CabinetState.STARTING
        return CabinetState.DEGRADED

    def degraded_reasons(self) -> list[str]:
        """Every running component's own reasons for `degraded` (Component.degraded)."""
        reasons: list[str] = []
        for slot in self._slots:
            if slot.state == ComponentState.RUNNING:
                try:
                    reasons += slot.component.degraded()
                except Exception as exc:
                    reasons.append(f"{slot.component.name}: degraded() failed: {exc}")
        return reasons

    def healthy_for_watchdog(self) -> bool:
        """True while no running component has stalled; feeds the systemd watchdog."""
        now = time.monotonic()
        return not any(s.state == ComponentState.RUNNING and s.component.stalled(now)
                       for s in self._slots)

    def status(self) -> dict[str, Any]:
        """Per-component state, errors and the component's own status."""
        out: dict[str, Any] = {}
        for slot in self._slots:
            comp = slot.component
            try:
                own = comp.status()
            except Exception as exc:
                own = {"error": f"status failed: {exc}"}
            out[comp.name] = {"state": slot.state.value, "last_error": slot.last_error,
                              "restarts": len(slot.restarts), **own}
        return out
