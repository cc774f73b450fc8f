"""The kiosk web app: the screen's page, its JSON API, and the daemon's door events streamed to it.

The page (lockerd/kiosk/static/) calls `/api/...` with POST bodies; each handler turns one
screen action into one panel call on the daemon's socket (lockerd/kiosk/link.py), as a
panel-role client and nothing more. Door events the daemon pushes are routed to the session that
started the operation and streamed to its page as server-sent events (`/api/events`); intake
changes go to every page. Refusals come back as `{"ok": false, "error": {"code": ...}}` with
the daemon's stable code; the page words them in the screen's language.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from lockerd.api.client import ApiReplyError, ApiUnavailable
from lockerd.kiosk import forms
from lockerd.kiosk.guard import MAX_BODY_BYTES, SESSION_COOKIE, guard, refuse
from lockerd.kiosk.link import DaemonLink
from lockerd.kiosk.sessions import Courier, Session, SessionStore

log = logging.getLogger(__name__)

#: Events that arrive for an operation before its reply (kept per op id, a few ops at most).
MAX_ORPHANS = 32
FINAL_EVENTS = frozenset({"done", "rolled_back", "failed"})
HEARTBEAT_S = 15.0
SWEEP_S = 2.0


@dataclass(frozen=True, slots=True)
class KioskSettings:
    """How the kiosk runs: the daemon's socket, its panel id, the screen's timing and texts."""

    socket: Path
    panel: str = "kiosk-1"
    port: int = 8080
    idle_timeout_s: float = 60.0
    terms_version: str = "terms-2026.1"


class Kiosk:
    """The app's state: the daemon link, the sessions, and which session owns which operation."""

    def __init__(self, settings: KioskSettings) -> None:
        self.settings = settings
        self.sessions = SessionStore(settings.idle_timeout_s)
        # a call may wait for an ID card on the reader (up to CARD_WAIT_MAX_S) before it answers
        self.link = DaemonLink(settings.socket, self._on_event,
                               timeout_s=15.0 + forms.CARD_WAIT_MAX_S)
        self.port = settings.port
        self._owner: dict[str, Session] = {}
        self._orphans: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._open_ops: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self.intake: dict[str, Any] = {"open": False, "reason": "unknown"}
        self._index = _static_text("index.html")

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and subscribe (retried in the background while the daemon is down)."""
        self._tasks.append(asyncio.create_task(self._keep_linked(), name="kiosk:link-keeper"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="kiosk:idle-sweep"))

    async def stop(self) -> None:
        """Stop the background tasks and close the link."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.link.close()

    async def _keep_linked(self) -> None:
        delay = 0.2
        while True:
            if not self.link.connected:
                try:
                    await self.link.connect()
                    sub = await self.link.subscribe(self.settings.panel)
                    self._set_intake(sub["intake"])
                    delay = 0.2
                except (ApiUnavailable, ApiReplyError, TimeoutError, ConnectionError) as exc:
                    log.warning("kiosk: lockerd not reachable (%s); retrying", exc)
                    self._set_intake({"open": False, "reason": "lockerd_unavailable"})
                    delay = min(delay * 2, 5.0)
            await asyncio.sleep(delay)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            for session in self.sessions.sweep(lambda s: bool(s.ops & self._open_ops)):
                for op in list(self._owner):
                    if self._owner[op] is session:
                        del self._owner[op]

    # ---- daemon events -------------------------------------------------------------------------

    def _set_intake(self, intake: dict[str, Any]) -> None:
        new = {"open": bool(intake.get("open")), "reason": intake.get("reason")}
        if new != self.intake:
            self.intake = new
            for session in self.sessions.all():
                session.send({"event": "intake", "op": None, **new})

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "intake":
            self._set_intake(event)
            return
        op = str(event.get("op"))
        if event.get("event") in FINAL_EVENTS:
            self._open_ops.discard(op)
        else:
            self._open_ops.add(op)
        owner = self._owner.get(op)
        if owner is None:
            self._orphans.setdefault(op, []).append(event)
            while len(self._orphans) > MAX_ORPHANS:
                self._orphans.popitem(last=False)
            return
        owner.send(event)

    def _adopt(self, session: Session, op: str) -> None:
        """The reply named `op`: from now on its events go to this session's page."""
        self._owner[op] = session
        session.ops.add(op)
        for event in self._orphans.pop(op, []):
            session.send(event)

    # ---- pages -------------------------------------------------------------------------------

    def session_of(self, request: web.Request) -> Session | None:
        """The request's session (cookie), if it is still alive."""
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def csrf_of(self, request: web.Request) -> str | None:
        """The CSRF token of the request's session, None without one."""
        session = self.session_of(request)
        return None if session is None else session.csrf

    async def index(self, request: web.Request) -> web.Response:
        """The screen's page, with a new session (a reload starts afresh, at home)."""
        old = self.session_of(request)
        if old is not None:
            old.courier = None
        session = self.sessions.new()
        body = self._index.replace("{{csrf}}", html.escape(session.csrf))
        response = web.Response(text=body, content_type="text/html", charset="utf-8",
                                headers={"Cache-Control": "no-store"})
        response.set_cookie(SESSION_COOKIE, session.sid, httponly=True, samesite="Strict",
                            path="/")
        return response

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events for the page: its operations' door progress, intake, go home."""
        session = self.session_of(request)
        if session is None:
            return refuse(403, "no_session")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-store",
                                               "X-Content-Type-Options": "nosniff"})
        await response.prepare(request)
        await response.write(_sse({"event": "intake", "op": None, **self.intake}))
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await session.queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            await response.write(_sse(event))

    async def home(self, request: web.Request) -> web.Response:
        """What the home screen shows (Art. 8: name, address, registration number; Art. 19)."""
        try:
            info = await self.link.call("panel.v2.info", {"panel": self.settings.panel})
            status = await self.link.call("status")
        except (ApiUnavailable, TimeoutError):
            return _unavailable()
        self._set_intake(info["intake"])
        return _ok({"name": info["name"], "address": info["address"],
                    "registration_number": status["cabinet"]["registration_number"],
                    "intake": self.intake, "free": info["free"], "carriers": info["carriers"],
                    "storage_hours": info["storage_hours"],
                    "fee_cents_per_period": info["fee_cents_per_period"],
                    "fee_period_hours": info["fee_period_hours"],
                    "fee_cap_cents": info["fee_cap_cents"],
                    "refusal_reasons": info["refusal_reasons"],
                    "reject_reasons": info["reject_reasons"],
                    "id_reader": bool(info.get("id_reader")),
                    "idle_timeout_s": self.settings.idle_timeout_s,
                    "terms_version": self.settings.terms_version})

    # ---- actions -----------------------------------------------------------------------------

    def routes(self) -> list[web.AbstractRouteDef]:
        """Every URL of the kiosk."""
        actions: dict[str, Callable[[Session, Any], Awaitable[dict[str, Any]]]] = {
            "alive": self._alive, "reset": self._reset, "pickup": self._pickup,
            "refuse": self._refuse, "courier/login": self._login, "courier/logout": self._logout,
            "courier/worklist": self._worklist, "courier/deliver": self._deliver,
            "courier/collect": self._collect, "courier/return": self._return,
            "courier/verdict": self._verdict,
            "send": self._send,
        }
        defs: list[web.AbstractRouteDef] = [web.get("/", self.index), web.get("/api/events", self.events),
                web.get("/api/home", self.home),
                web.static("/static", str(_static_dir()), show_index=False)]
        for name, action in actions.items():
            defs.append(web.post(f"/api/{name}", self._action(action)))
        return defs

    def _action(self, action: Callable[[Session, Any], Awaitable[dict[str, Any]]]
                ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            session = self.session_of(request)
            if session is None:
                return refuse(403, "no_session")
            try:
                body = await request.json()
            except ValueError:
                return refuse(400, "bad_json")
            try:
                return _ok(await action(session, body))
            except ValidationError:
                return refuse(400, "bad_input")
            except ApiReplyError as exc:
                reply = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
                if isinstance(exc.reply.get("result"), dict):
                    reply["result"] = exc.reply["result"]
                return web.json_response(reply)
            except (ApiUnavailable, TimeoutError):
                return _unavailable()
        return handler

    async def _call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.link.call(method, {"panel": self.settings.panel,
                                                               **params})
        return result

    async def _start(self, session: Session, method: str, params: dict[str, Any]
                     ) -> dict[str, Any]:
        result = await self._call(method, params)
        self._adopt(session, str(result["op"]))
        return result

    async def _alive(self, session: Session, _body: Any) -> dict[str, Any]:
        return {"courier": session.courier is not None}

    async def _reset(self, session: Session, _body: Any) -> dict[str, Any]:
        session.courier = None
        return {"home": True}

    async def _pickup(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Pickup.model_validate(body)
        return await self._start(session, "panel.v2.pickup", form.model_dump(exclude_none=True))

    async def _refuse(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Refuse.model_validate(body)
        self._own(session, form.op)
        return await self._call("panel.v2.refuse", form.model_dump())

    async def _login(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Login.model_validate(body)
        courier = Courier(form.carrier, form.courier_id, form.pin, form.pass_token)
        result = await self.link.call("panel.v2.login", courier.params(self.settings.panel))
        session.courier = courier
        return {k: result[k] for k in ("carrier", "courier_id", "expires", "to_return",
                                       "to_collect")}

    async def _worklist(self, session: Session, _body: Any) -> dict[str, Any]:
        courier = self._courier(session)
        result = await self.link.call("panel.v2.login", courier.params(self.settings.panel))
        return {k: result[k] for k in ("carrier", "courier_id", "expires", "to_return",
                                       "to_collect")}

    async def _logout(self, session: Session, _body: Any) -> dict[str, Any]:
        session.courier = None
        return {"logged_out": True}

    def _courier(self, session: Session) -> Courier:
        if session.courier is None:
            raise ApiReplyError("not_logged_in", "log in first", {})
        return session.courier

    async def _deliver(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Deliver.model_validate(body)
        auth = self._courier(session).params(self.settings.panel)
        return await self._start(session, "panel.v2.deliver",
                                 {**auth, "parcel": form.model_dump(exclude_none=True)})

    async def _collect(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.ParcelChoice.model_validate(body)
        auth = self._courier(session).params(self.settings.panel)
        return await self._start(session, "panel.v2.collect", {**auth, "parcel_id": form.parcel_id})

    async def _return(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.ParcelChoice.model_validate(body)
        auth = self._courier(session).params(self.settings.panel)
        return await self._start(session, "panel.v2.return", {**auth, "parcel_id": form.parcel_id})

    async def _verdict(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Verdict.model_validate(body)
        self._own(session, form.op)
        return await self._call("panel.v2.verdict", form.model_dump(exclude_none=True))

    async def _send(self, session: Session, body: Any) -> dict[str, Any]:
        form = forms.Send.model_validate(body)
        return await self._start(session, "panel.v2.dropoff", {
            "dropoff": form.model_dump(exclude={"terms_version", "card_wait_s"}),
            "terms_version": form.terms_version, "card_wait_s": form.card_wait_s})

    def _own(self, session: Session, op: str) -> None:
        if self._owner.get(op) is not session:
            raise ApiReplyError("bad_state", "not this screen's operation", {})


def build_app(kiosk: Kiosk) -> web.Application:
    """The aiohttp application around a `Kiosk` (started and stopped with the app)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[guard(lambda: kiosk.port, kiosk.csrf_of)])
    app.add_routes(kiosk.routes())

    async def lifecycle(_app: web.Application) -> Any:
        await kiosk.start()
        yield
        await kiosk.stop()

    app.cleanup_ctx.append(lifecycle)
    return app


def _ok(result: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _unavailable() -> web.Response:
    return web.json_response({"ok": False, "error": {"code": "unavailable"}}, status=503)


def _sse(event: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"


def _static_dir() -> Path:
    return Path(str(resources.files("lockerd.kiosk") / "static"))


def _static_text(name: str) -> str:
    return (resources.files("lockerd.kiosk") / "static" / name).read_text(encoding="utf-8")
