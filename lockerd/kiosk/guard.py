"""What every kiosk request must pass: the right Host, the page's own Origin and CSRF token, small bodies.

The kiosk listens on 127.0.0.1 only, but any web page the cabinet's browser could load, and any
local process, can send it requests. So a state-changing request must come from the kiosk's own
page: its `Origin` is the kiosk's, it carries the session's CSRF token in a header (a form post
from elsewhere cannot set one), and its body is JSON. The `Host` header is checked on every
request (a DNS-rebinding page reaches 127.0.0.1 under a foreign name). Personal data (codes,
PINs, waybills) only ever travel in POST bodies: query strings are refused on the API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

#: Largest request body the kiosk reads (a drop-off's declarations are a few hundred bytes).
MAX_BODY_BYTES = 8 * 1024
CSRF_HEADER = "X-CSRF-Token"
SESSION_COOKIE = "kiosk_sid"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def allowed_hosts(port: int) -> frozenset[str]:
    """Host header values of the kiosk's own URL."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def refuse(status: int, code: str) -> web.Response:
    """A guard refusal as the page's API helper reads it."""
    return web.json_response({"ok": False, "error": {"code": code}}, status=status,
                             headers={"Cache-Control": "no-store"})


def guard(port_of: Callable[[], int], csrf_of: Callable[[web.Request], str | None]
          ) -> Middleware:
    """The middleware; `port_of` gives the bound port, `csrf_of` the session's token (None when
    the request has no valid session)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        port = port_of()
        if request.host not in allowed_hosts(port):
            return refuse(421, "bad_host")
        if request.path.startswith("/api/"):
            if request.query_string:
                return refuse(400, "no_query")  # personal data never in URLs
            if request.method == "POST":
                problem = _post_problem(request, port, csrf_of(request))
                if problem is not None:
                    return refuse(403 if problem != "bad_type" else 415, problem)
            elif request.method != "GET":
                return refuse(405, "bad_method")
        response = await handler(request)
        _secure(response, api=request.path.startswith("/api/"))
        return response

    return middleware


def _post_problem(request: web.Request, port: int, csrf: str | None) -> str | None:
    origin = request.headers.get("Origin")
    if origin not in {f"http://{host}" for host in allowed_hosts(port)}:
        return "bad_origin"
    if csrf is None:
        return "no_session"
    if request.headers.get(CSRF_HEADER) != csrf:
        return "bad_csrf"
    if request.content_type != "application/json":
        return "bad_type"
    return None


def _secure(response: web.StreamResponse, *, api: bool) -> None:
    if response.prepared:
        return  # a stream (events) sets its own headers before it starts
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if api:
        headers["Cache-Control"] = "no-store"
