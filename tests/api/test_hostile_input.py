"""Hostile params to every method of a running daemon: a client error every time, never `internal`.

Deep nesting, lone surrogates, naive timestamps, huge integers and booleans where numbers belong
go to every registered method over one real connection (as root, so every role's method is
reached); each gets a client-error reply and the connection keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from lockerd.domain.errors import ErrorCode
from tests.fixtures.cabinet import Cabinet, courier, delivery

TRANSPORT = {"bad_request", "bad_params", "unknown_method", "forbidden", "too_large",
             "rate_limited", "too_many_connections"}
#: ApiError codes of the technician and audit methods (door outcomes are `door_<outcome>`).
METHOD_ERRORS = {"board_silent", "boards_unavailable", "log_unavailable", "reason_required",
                 "refused", "unavailable", "unknown_board", "unknown_channel",
                 "cursor_unknown", "cursor_not_yours", "too_many_exports",
                 "unknown_compartment"}
#: [api] max_request_bytes of the test config (the default).
MAX_REQUEST_BYTES = 65536
CLIENT_ERRORS = TRANSPORT | METHOD_ERRORS | {c.value for c in ErrorCode}


def _deep(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "list" else '{"a":' * depth + "1" + "}" * depth


#: JSON text of values no params model should take as they are (or take harmlessly).
HOSTILE = st.one_of(
    st.sampled_from(["true", "false", "null", "1e400", "-1e400", "NaN", "Infinity", "[]", "{}",
                     '""', '"2026-03-01T08:00:00"', '"2026-03-01 08:00"', "3.0", '"3"',
                     '"\\u0000"', '"\\ud800"', '"x\\udfff"', '{"\\udc80": 1}']),
    st.integers(-(2**80), 2**80).map(str),
    st.builds(_deep, st.integers(33, 4000), st.sampled_from(["list", "dict"])),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=4)
    .map(json.dumps),
    st.datetimes().map(lambda d: json.dumps(d.isoformat())),
    st.text(max_size=8).map(lambda t: json.dumps(t * 2000)),
)


class Line:
    """One blocking connection to the daemon (root: every role, no rate limit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connect()

    def _connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(str(self.path))
        self.reader = self.sock.makefile("rb")

    def send(self, method: str, params_json: str) -> dict[str, Any]:
        line = '{"id": 1, "method": ' + json.dumps(method) + ', "params": ' + params_json + "}\n"
        data = line.encode()
        if len(data) > MAX_REQUEST_BYTES:
            # documented: too_large, then the daemon closes (maybe while the line is still sent)
            with contextlib.suppress(ConnectionError):
                self.sock.sendall(data)
            reply = self.reader.readline()
            self.close()
            self._connect()
            return json.loads(reply) if reply else _error("too_large")
        self.sock.sendall(data)
        reply = self.reader.readline()
        assert reply, f"the daemon dropped the connection on {line[:200]!r}"
        got: dict[str, Any] = json.loads(reply)
        return got

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def _error(code: str) -> dict[str, Any]:
    return {"id": None, "ok": False, "error": {"code": code, "message": ""}}


def _client_error(reply: dict[str, Any]) -> str:
    assert reply.get("ok") is False, reply
    code = str(reply["error"]["code"])
    assert code in CLIENT_ERRORS or code.startswith("door_"), reply
    return code


async def test_targeted_hostile_params_are_client_errors(cab: Cabinet) -> None:
    res = await cab.call("panel.deliver", {**courier(), "parcel": delivery()})
    conn = await asyncio.to_thread(Line, cab.cfg.paths.socket)
    try:
        cases = [
            # booleans are not integers: none of these may open door 1
            ("doors.open", '{"compartment": true, "reason": "check"}', "bad_params"),
            ("panel.refuse", '{"compartment": true, "reason": "damaged"}', "bad_params"),
            ("boards.pulse", '{"bus": "bus0", "board": true, "channel": false, "reason": "x"}',
             "bad_params"),
            ("panel.deliver", json.dumps({**courier(), "parcel": {**delivery(),
                                                                 "consent": 1}}), "bad_params"),
            ("doors.open", '{"compartment": 1.0, "reason": "check"}', "bad_params"),
            ("doors.open", '{"compartment": "1", "reason": "check"}', "bad_params"),
            # a timestamp without a zone, out-of-range integers
            ("log.view", '{"from": "2026-03-01T08:00:00"}', "bad_params"),
            ("log.report", '{"from": "2026-03-01T08:00:00", "to": "2026-03-02T08:00:00Z"}',
             "bad_params"),
            ("log.view", '{"after_seq": 100000000000000000000000000000}', "bad_params"),
            ("log.view", '{"compartment": 99999999999999999999}', "bad_params"),
            # lone surrogates, deep nesting: refused as requests, whatever the method
            ("panel.pickup", '{"code": "\\ud800\\ud800"}', "bad_request"),
            ("status", '{"\\udfff": 1}', "bad_request"),
            ("\udc80", "{}", "bad_request"),         # echoed back in unknown_method's message
            ("log.view", '{"kind": ' + _deep(5000, "list") + "}", "bad_request"),
            ("log.view", '{"kind": ' + _deep(200, "dict") + "}", "bad_request"),
        ]
        for method, params, code in cases:
            reply = await asyncio.to_thread(conn.send, method, params)
            assert _client_error(reply) == code, (method, params[:80], reply)
        # the connection still serves, and no door moved
        ok = await asyncio.to_thread(conn.send, "status", "{}")
        assert ok["ok"]
    finally:
        conn.close()
    assert not await cab.ops("maintenance.open")
    assert cab.d.parcels.cabinet.state.compartments[res["compartment"]].state.value == "occupied"


async def test_hostile_params_to_every_method_get_client_errors(cab: Cabinet) -> None:
    api = cab.d.api
    methods = api.methods
    fields = {m: [f.alias or name for name, f in api.params_model(m).model_fields.items()]
              for m in methods}
    conn = await asyncio.to_thread(Line, cab.cfg.paths.socket)
    seen: dict[str, int] = {}

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    @example(data=None)
    def run(data: st.DataObject | None) -> None:
        if data is None:            # the reported case: a boolean for a compartment
            method, params = "doors.open", '{"compartment": true, "reason": "x"}'
        else:
            method = data.draw(st.sampled_from(methods))
            keys = fields[method]
            chosen = data.draw(st.lists(st.sampled_from(keys), min_size=1, unique=True)) \
                if keys else []
            if not chosen or data.draw(st.booleans()):
                chosen.append(data.draw(st.sampled_from(["extra", "panel", "id", "__class__"])))
            values = [data.draw(HOSTILE) for _ in chosen]
            params = "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in zip(chosen, values,
                                                                            strict=True)) + "}"
            # a hostile value can still be valid for a field ('"3"' for the optional, ignored
            # `panel` string): such a draw is a real request, not hostile input
            with contextlib.suppress(ValidationError, ValueError):
                api.params_model(method).model_validate_json(params)
                reject()
        code = _client_error(conn.send(method, params))
        seen[code] = seen.get(code, 0) + 1

    try:
        await asyncio.to_thread(run)
        ok = await asyncio.to_thread(conn.send, "status", "{}")
        assert ok["ok"]
    finally:
        conn.close()
    print(f"\nhostile params: {sum(seen.values())} requests to {len(methods)} methods: {seen}")
    assert seen.get("bad_params", 0) > 100
    assert "internal" not in seen
