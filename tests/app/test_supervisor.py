"""Supervisor: a crashing component is restarted with backoff, others keep running, budget holds."""

from __future__ import annotations

import asyncio

from lockerd.app.supervisor import CabinetState, Component, ComponentState, Supervisor


class Flaky(Component):
    name = "flaky"

    def __init__(self, crashes: int) -> None:
        super().__init__()
        self.crashes_left = crashes
        self.runs = 0
        self.stops = 0

    async def run(self) -> None:
        self.runs += 1
        if self.crashes_left:
            self.crashes_left -= 1
            raise RuntimeError("bus exploded")
        await asyncio.Event().wait()

    async def stop(self) -> None:
        self.stops += 1


class Steady(Component):
    name = "steady"
    progress_deadline = 0.2


class BadStart(Component):
    name = "badstart"

    async def start(self) -> None:
        raise OSError("no such device")


async def wait_until(pred: object, limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while not pred():  # type: ignore[operator]  # noqa: ASYNC110  # polls supervisor state
            await asyncio.sleep(0.01)


async def test_crash_is_restarted_and_others_keep_running() -> None:
    sup = Supervisor(backoff_initial=0.01, backoff_max=0.05)
    flaky, steady = Flaky(crashes=2), Steady()
    sup.add(flaky)
    sup.add(steady)
    await sup.start_all()
    await wait_until(lambda: flaky.runs == 3)
    await wait_until(lambda: sup.status()["flaky"]["state"] == "running")
    assert sup.status()["flaky"]["restarts"] == 2
    assert sup.status()["steady"]["state"] == "running"
    assert sup.cabinet_state() == CabinetState.READY
    await sup.stop_all()
    assert sup.cabinet_state() == CabinetState.SHUTDOWN
    assert flaky.stops >= 3


async def test_restart_budget_leaves_component_failed() -> None:
    sup = Supervisor(backoff_initial=0.01, backoff_max=0.01, budget=3)
    bad = BadStart()
    sup.add(bad)
    sup.add(Steady())
    await sup.start_all()
    await wait_until(lambda: sup.status()["badstart"]["state"] == ComponentState.FAILED)
    assert sup.cabinet_state() == CabinetState.DEGRADED
    assert "no such device" in sup.status()["badstart"]["last_error"]
    await sup.stop_all()


async def test_stalled_component_withholds_watchdog() -> None:
    sup = Supervisor()
    steady = Steady()
    sup.add(steady)
    await sup.start_all()
    assert sup.healthy_for_watchdog()
    await asyncio.sleep(0.3)
    assert not sup.healthy_for_watchdog()
    steady.progress()
    assert sup.healthy_for_watchdog()
    await sup.stop_all()
