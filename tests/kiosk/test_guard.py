"""The kiosk's HTTP guard without a browser: Host, Origin, CSRF, body size, no data in URLs, sessions."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

aiohttp = pytest.importorskip("aiohttp")

from lockerd.kiosk.app import Kiosk, KioskSettings  # noqa: E402
from lockerd.kiosk.guard import MAX_BODY_BYTES  # noqa: E402
from lockerd.kiosk.serve import serving  # noqa: E402
from lockerd.kiosk.sessions import SessionStore  # noqa: E402


@pytest.fixture
async def kiosk(tmp_path: Path) -> AsyncIterator[Kiosk]:
    # no daemon behind it: every check here happens before a request reaches the daemon
    async with serving(KioskSettings(socket=tmp_path / "absent.sock", port=0)) as k:
        yield k


class Page:
    """What the kiosk's own page holds: its session cookie and CSRF token."""

    def __init__(self, kiosk: Kiosk, http: Any) -> None:
        self.base = f"http://127.0.0.1:{kiosk.port}"
        self.http = http
        self.csrf = ""

    async def load(self) -> None:
        async with self.http.get(self.base + "/") as r:
            assert r.status == 200
            cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            html = await r.text()
        match = re.search(r'name="csrf-token" content="([^"]+)"', html)
        assert match is not None
        self.csrf = match.group(1)

    async def post(self, path: str, body: Any = None, *, origin: str | None = None,
                   csrf: str | None = None, host: str | None = None, data: bytes | None = None,
                   content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        headers = {"Origin": origin or self.base, "X-CSRF-Token": self.csrf if csrf is None else csrf,
                   "Content-Type": content_type}
        if host is not None:
            headers["Host"] = host
        payload = data if data is not None else json.dumps({} if body is None else body).encode()
        async with self.http.post(self.base + path, data=payload, headers=headers) as r:
            try:
                return r.status, await r.json()
            except Exception:
                return r.status, {}


@pytest.fixture
async def page(kiosk: Kiosk) -> AsyncIterator[Page]:
    # the kiosk's cookie belongs to 127.0.0.1: the client must keep cookies of an IP address
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        p = Page(kiosk, http)
        await p.load()
        yield p


async def test_the_page_itself_passes(page: Page) -> None:
    status, reply = await page.post("/api/alive")
    assert (status, reply) == (200, {"ok": True, "result": {"courier": False}})


async def test_a_foreign_origin_or_missing_token_is_refused(page: Page) -> None:
    assert (await page.post("/api/alive", origin="http://evil.example"))[0] == 403
    assert (await page.post("/api/alive", origin="null"))[0] == 403
    status, reply = await page.post("/api/alive", csrf="forged")
    assert (status, reply["error"]["code"]) == (403, "bad_csrf")
    status, reply = await page.post("/api/alive", content_type="text/plain")
    assert (status, reply["error"]["code"]) == (415, "bad_type")


async def test_a_foreign_host_is_refused(page: Page) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name."""
    status, reply = await page.post("/api/alive", host="evil.example:8080")
    assert (status, reply["error"]["code"]) == (421, "bad_host")
    async with page.http.get(page.base + "/", headers={"Host": "evil.example"}) as r:
        assert r.status == 421


async def test_no_personal_data_in_urls_and_small_bodies_only(page: Page) -> None:
    async with page.http.get(page.base + "/api/home?code=123456") as r:
        assert r.status == 400
    status, _ = await page.post("/api/pickup?code=123456", {"code": "123456"})
    assert status == 400
    status, _ = await page.post("/api/pickup", data=b'{"code": "' + b"1" * MAX_BODY_BYTES + b'"}')
    assert status == 413
    status, reply = await page.post("/api/pickup", {"code": "12"})
    assert (status, reply["error"]["code"]) == (400, "bad_input")
    status, reply = await page.post("/api/pickup", {"code": "123456", "extra": 1})
    assert (status, reply["error"]["code"]) == (400, "bad_input")


async def test_without_the_daemon_the_screen_says_unavailable(page: Page) -> None:
    status, reply = await page.post("/api/pickup", {"code": "123456"})
    assert (status, reply["error"]["code"]) == (503, "unavailable")
    async with page.http.get(page.base + "/api/home") as r:
        assert r.status == 503


async def test_a_session_from_elsewhere_is_no_session(kiosk: Kiosk) -> None:
    async with aiohttp.ClientSession() as http:
        p = Page(kiosk, http)
        status, reply = await p.post("/api/alive", csrf="x")
    assert (status, reply["error"]["code"]) == (403, "no_session")


def test_idle_sessions_go_home_and_forget_the_courier() -> None:
    now = [0.0]
    store = SessionStore(idle_timeout_s=60, clock=lambda: now[0])
    from lockerd.kiosk.sessions import Courier

    busy = store.new()
    idle = store.new()
    for s in (busy, idle):
        s.courier = Courier("sf", "c-1", "482913")
    now[0] = 61.0
    sent = store.sweep(lambda s: s is busy)  # a door of `busy` is still open
    assert sent == [idle]
    assert idle.courier is None
    assert busy.courier is not None
    assert idle.queue.get_nowait() == {"event": "home", "op": None, "reason": "idle"}
    assert "482913" not in repr(busy.courier)
