"""The kiosk in Debian's Chromium: every flow end to end against the daemon on the simulator.

One browser and one daemon (with the kiosk in-process, on 127.0.0.1) serve the whole module;
each test opens its own page. Assertions are on what the screen shows and on the operation-log
records behind it. Screenshots of each screen in both languages at 1024x600 go to
.artifacts/kiosk/ (git-ignored), with the code-to-door timings.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio

from lockerd.api.client import AsyncApiClient
from lockerd.kiosk.app import Kiosk, KioskSettings
from lockerd.kiosk.serve import serving
from tests.fixtures.cabinet import CARRIER, PIN, Cabinet, courier, delivery
from tests.kiosk.rig import (
    SMALL,
    Timer,
    chromium,
    need_browser,
    small_targets,
    snap,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(600)]
TIMER = Timer()
POOL_WORKER = re.compile(r"^(asyncio|oplog-read)_[0-9]+$")


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _system_health_check() -> AsyncIterator[None]:
    """tests/fixtures/health.py's check for tests that share the module's loop and daemon: a
    test must leave no task of its own running and no thread but the workers of the shared
    thread pools (the loop's asyncio.to_thread pool, the log's read pool: started on first use,
    they end with the module's daemon and loop; the rest of the suite checks those)."""
    tasks_before = asyncio.all_tasks()
    threads_before = set(threading.enumerate())
    yield
    me = asyncio.current_task()
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [t for t in asyncio.all_tasks() if t not in tasks_before and t is not me
                  and not t.done() and not t.get_name().startswith("panel-op")]
        if not leaked or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()
               and not t.daemon and not POOL_WORKER.search(t.name)]
    assert not leaked, f"test leaked asyncio tasks: {sorted(t.get_name() for t in leaked)}"
    assert not threads, f"test leaked threads: {threads}"


@dataclass
class Rig:
    """The module's daemon, kiosk and browser."""

    cab: Cabinet
    kiosk: Kiosk
    browser: Any
    urls: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.kiosk.port}/"

    async def page(self, viewport: dict[str, int] = SMALL, url: str | None = None,
                   **context: Any) -> Any:
        ctx = await self.browser.new_context(viewport=viewport, **context)
        self.contexts.append(ctx)
        ctx.on("request", lambda r: self.urls.append(r.url))
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        await page.goto(url or self.url)
        await page.wait_for_selector("#go-pickup")
        return page

    def hold(self, held: bool = True) -> None:
        for c in self.cab.cfg.compartments:
            faults, bus, board, ch = self.cab.hw(c.id)
            faults.hold_open(bus, board, ch, held=held)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    need_browser()
    cab = Cabinet(tmp_path_factory.mktemp("kiosk"),
                  storage={"overdue_fee_cents_per_day": 150},
                  doors={"close_timeout_s": 15.0, "left_open_prompt_s": 1.5,
                         "left_open_alert_s": 30.0, "left_open_incident_s": 60.0})
    await cab.start()
    await cab.grant(CARRIER, "c-101", PIN)
    try:
        async with serving(KioskSettings(socket=cab.cfg.paths.socket, port=0)) as kiosk, \
                chromium() as browser:
            rig = Rig(cab, kiosk, browser)
            yield rig
            if rig.latencies_ms:
                lat = sorted(rig.latencies_ms)
                TIMER.write("latency", {
                    "samples": len(lat), "median_ms": round(statistics.median(lat), 1),
                    "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 1),
                    "max_ms": round(lat[-1], 1)})
            TIMER.write("module", {"seconds": round(time.monotonic() - TIMER.t0, 1)})
        await cab.verify()
    finally:
        await cab.stop()


@pytest_asyncio.fixture(autouse=True, loop_scope="module")
async def _close_pages(rig: Rig) -> AsyncIterator[None]:
    """Each test's pages are closed after it (their connections to the kiosk end with them)."""
    yield
    for ctx in rig.contexts:
        await ctx.close()
    rig.contexts.clear()
    rig.hold(False)


async def deliver_many(cab: Cabinet, n: int, prefix: str) -> list[tuple[int, str]]:
    """n parcels deposited at once (one connection each, as n couriers); (compartment, code)."""
    async def one(i: int) -> tuple[int, str]:
        async with AsyncApiClient(cab.cfg.paths.socket) as api:
            res = await api.call("panel.deliver", {**courier(panel=f"api-{i}"),
                                                   "parcel": delivery(f"{prefix}{i:04d}")})
        assert res["status"] == "deliver.confirm", res
        return res["compartment"], await cab.code_of(res["parcel_id"])
    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def type_keys(page: Any, text: str) -> None:
    """Type on the screen's own keypad, one key at a time."""
    for ch in text:
        await page.click(f'.keys [data-key="{ch}"]')


async def enter_code(page: Any, code: str) -> None:
    await page.click("#go-pickup")
    await type_keys(page, code)
    await page.click("#code-ok")


async def door_text(page: Any, contains: str, limit_ms: int = 15000) -> str:
    await page.wait_for_function(
        "t => (document.getElementById('door-status')?.textContent || '').includes(t)",
        arg=contains, timeout=limit_ms)
    return str(await page.text_content("#door-status"))


# ---- home --------------------------------------------------------------------------------------

async def test_home_shows_the_locker_and_switches_language(rig: Rig) -> None:
    page = await rig.page()
    identity = await page.text_content("#identity")
    assert identity is not None
    cfg = rig.cab.cfg.cabinet
    for part in (cfg.name, cfg.address, cfg.registration_number):  # Art. 8
        assert part in identity
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    assert "取件" in str(await page.text_content("#go-pickup"))
    await snap(page, "01-home")
    await page.click("#lang")
    assert "Pick up" in str(await page.text_content("#go-pickup"))
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert await small_targets(page) == []
    assert not page.errors


# ---- recipient ---------------------------------------------------------------------------------

async def test_pickup_shows_the_door_then_done_and_is_fast(rig: Rig) -> None:
    page = await rig.page()
    first = True
    for batch in range(3):
        parcels = await deliver_many(rig.cab, 8, f"SFL{batch}")
        for compartment, code in parcels:
            if not first:
                await page.goto(rig.url)
                await page.wait_for_selector("#go-pickup")
            await page.click("#go-pickup")
            if first:
                await snap(page, "02-pickup-code")
            await type_keys(page, code)
            await page.click("#code-ok")
            await page.wait_for_selector("#door-number")
            assert await page.text_content("#door-number") == str(compartment)
            rig.latencies_ms.extend(await page.evaluate("window.__kiosk.metrics"))
            if first:
                await snap(page, "03-pickup-door-opening")
                await door_text(page, "谢谢")
                await snap(page, "04-pickup-done")
                first = False
    assert len(rig.latencies_ms) == 24
    assert statistics.median(rig.latencies_ms) < 1000
    # every pickup is recorded begin and confirm, the codes nowhere in a URL
    await asyncio.sleep(2.0)  # the last doors close
    assert len(await rig.cab.ops("pickup.confirm")) >= 24
    assert all("code" not in u for u in rig.urls if "/api/" in u)


async def test_refusing_a_parcel_on_the_spot(rig: Rig) -> None:
    [(compartment, code)] = await deliver_many(rig.cab, 1, "SFR")
    page = await rig.page()
    rig.hold()
    try:
        await enter_code(page, code)
        await page.wait_for_selector("#refuse")
        await door_text(page, f"{compartment} 号格口已打开")
        await snap(page, "05-pickup-door-open")
        await page.click("#refuse")
        await page.wait_for_selector("#refuse-reasons")
        await snap(page, "06-refuse-reasons")
        await page.click('#refuse-reasons [data-reason="damaged"]')
        await door_text(page, "请将快件放回")
        await snap(page, "07-refuse-put-back")
    finally:
        rig.hold(False)
    await door_text(page, "已拒收")
    refused = [o for o in await rig.cab.ops("refuse.confirm") if o.compartment == compartment]
    assert refused[-1].body["reason"] == "damaged"
    events = await rig.cab.events("parcel.refused")
    assert events[-1]["body"]["compartment"] == compartment


async def test_a_fee_is_shown_before_the_door_opens(rig: Rig) -> None:
    [(compartment, code)] = await deliver_many(rig.cab, 1, "SFF")
    clock = rig.cab.d.parcels.clock
    clock.advance(timedelta(hours=72 + 20))  # type: ignore[attr-defined]
    begins = len(await rig.cab.ops("pickup.begin"))
    try:
        page = await rig.page()
        await enter_code(page, code)
        await page.wait_for_selector("#fee-text")
        assert "1.50" in str(await page.text_content("#fee-text"))
        assert len(await rig.cab.ops("pickup.begin")) == begins  # nothing opened or counted
        await snap(page, "08-pickup-fee")
        await page.click("#fee-accept")
        await page.wait_for_selector("#door-number")
        assert await page.text_content("#door-number") == str(compartment)
        await door_text(page, "谢谢")
    finally:
        clock.advance(-timedelta(hours=72 + 20))  # type: ignore[attr-defined]
    begin = [o for o in await rig.cab.ops("pickup.begin") if o.compartment == compartment][-1]
    assert begin.body["fee_cents"] == 150


async def test_wrong_codes_lock_the_screen_out(rig: Rig) -> None:
    async with serving(KioskSettings(socket=rig.cab.cfg.paths.socket, port=0,
                                     panel="kiosk-lock")) as other:
        page = await rig.page(url=f"http://127.0.0.1:{other.port}/")
        await page.click("#go-pickup")
        for i in range(6):
            await type_keys(page, f"90000{i}")
            await page.click("#code-ok")
            await page.wait_for_selector("#code-error")
            text = str(await page.text_content("#code-error"))
            if i < 4:
                assert f"还可尝试 {4 - i} 次" in text
            else:
                assert "错误次数过多" in text  # the fifth wrong code locks, the sixth is locked out
        await snap(page, "09-pickup-locked-out")
        await page.context.close()
        rig.contexts.remove(page.context)
    refused = [o.body["error"] for o in await rig.cab.ops("pickup.begin")
               if o.body.get("panel") == "kiosk-lock"]
    assert refused == ["wrong_code"] * 5 + ["locked_out"]
