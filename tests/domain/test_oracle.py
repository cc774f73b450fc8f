"""No oracle: what a guesser sees never tells a live code or a known courier id from a wrong one."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest

from lockerd.domain import CourierAuth, Decision, ErrorCode
from lockerd.domain import pins as pins_module
from lockerd.domain.ids import Size
from lockerd.domain.requests import Delivery
from tests.fixtures.domain import PIN, POLICY, SPEC, Harness, in_days, make_harness

SF = CourierAuth(carrier="sf", courier_id="c1", pin=PIN)


def _deposited(h: Harness) -> tuple[int, str]:
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 30), pin=PIN)).ok
    begin = h.run(h.cab.begin_deposit(SF, "k1", Delivery(waybill="SF1000001", size=Size.S,
                                                          consent=True)))
    assert begin.open_door is not None
    done = h.run(h.cab.confirm_deposit(begin.open_door))
    return begin.open_door, str(done.events[0].body["pickup_code"])


def _answer(d: Decision) -> tuple[Any, str, dict[str, Any]]:
    """All a panel learns of a refusal: the code, the message, the result."""
    return d.error, d.message, d.result


@pytest.mark.parametrize("state", ["blocked", "busy"])
def test_a_live_code_for_a_compartment_that_cannot_open_answers_like_a_wrong_code(state: str) -> None:
    h = make_harness()
    cid, code = _deposited(h)
    if state == "blocked":
        assert h.run(h.cab.block(cid, "forced", "tech:t1")).ok
    else:  # its door is already under way (the recipient at the door, someone else types the code)
        assert h.run(h.cab.begin_pickup("k1", code)).ok
    wrong = "000000" if code != "000000" else "000001"
    first = h.run(h.cab.begin_pickup("k2", wrong))
    second = h.run(h.cab.begin_pickup("k2", code))
    assert _answer(first) == (ErrorCode.WRONG_CODE, "unknown pickup code", {"attempts_left": 4})
    # same answer, and it counted
    assert _answer(second) == (ErrorCode.WRONG_CODE, "unknown pickup code", {"attempts_left": 3})
    assert second.record.body == {"panel": "k2", "attempts_left": 3, "error": "wrong_code"}
    # staff still learn it from the log row and the operator line
    assert (second.record.compartment, second.notify_operator is not None) == (cid, True)


class _Pbkdf2Counter:
    """Counts PBKDF2 runs and their iteration counts (the cost an observer can time)."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._real = hashlib.pbkdf2_hmac

    def __call__(self, name: str, password: bytes, salt: bytes, iterations: int,
                 dklen: int | None = None) -> bytes:
        self.calls.append(iterations)
        return self._real(name, password, salt, iterations, dklen)


def test_an_unknown_courier_costs_the_same_pbkdf2_as_a_wrong_pin(monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    policy = replace(POLICY, pin_hash_iterations=2000)
    h = make_harness(replace(SPEC, policy=policy))
    assert h.run(h.cab.grant_courier("sf", "c1", in_days(h.clock, 30), pin=PIN)).ok
    counter = _Pbkdf2Counter()
    monkeypatch.setattr(pins_module.hashlib, "pbkdf2_hmac", counter)
    known = h.run(h.cab.courier_login(SF.model_copy(update={"pin": "000001"}), "k1"))
    known_calls = list(counter.calls)
    counter.calls.clear()
    unknown = h.run(h.cab.courier_login(SF.model_copy(update={"courier_id": "ghost"}), "k2"))
    assert known_calls == counter.calls == [2000]
    assert _answer(known) == _answer(unknown) == (ErrorCode.BAD_PIN, "courier id or PIN wrong",
                                                  {"attempts_left": 4})
