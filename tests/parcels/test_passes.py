"""Offline courier passes through the real API socket of an in-process daemon: a pass logs a
courier in for deliver/collect/return, and every refusal has its own code and its record."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lockerd.demo.realname import DEMO_REALNAME_PUBLIC
from lockerd.domain.timefmt import format_ts
from lockerd.parcels.passes import PassVerifier
from lockerd.testing.passes import demo_key, issue, public_b64
from tests.fixtures.cabinet import Cabinet, delivery, dropoff, running, while_open

CAB = "CAB-0001"
SF = demo_key("sf")
YTO = demo_key("yto")
# a key no cabinet knows, naming a carrier that has one
FORGER = demo_key("forger")


def carriers_with_keys() -> list[dict[str, Any]]:
    """sf issues passes; yto is authorised here but has no pass key (jd is not configured)."""
    return [{"id": "sf", "name": "SF Express", "pass_public_key": public_b64(SF),
             "realname_public_key": DEMO_REALNAME_PUBLIC},
            {"id": "yto", "name": "YTO Express", "realname_public_key": DEMO_REALNAME_PUBLIC}]


@pytest.fixture
async def pcab(tmp_path: Path) -> AsyncIterator[Cabinet]:
    async with running(tmp_path, carriers=carriers_with_keys(),
                       cabinet={"groups": ["haidian-north"]}) as c:
        yield c


def a_pass(key: Any = SF, *, carrier: str = "sf", courier_id: str = "c-900",
           start: timedelta = timedelta(minutes=-5), hours: float = 8.0,
           cabinets: tuple[str, ...] = (CAB,), group: str | None = None,
           pass_id: str | None = None) -> str:
    nbf = datetime.now(UTC) + start
    return issue(key, carrier=carrier, courier_id=courier_id, not_before=nbf,
                 expires=nbf + timedelta(hours=hours), cabinets=cabinets, group=group,
                 pass_id=pass_id)


async def test_a_pass_delivers_collects_and_returns_without_a_grant(pcab: Cabinet) -> None:
    token = a_pass(pass_id="pass-deliver-1")
    login = await pcab.call("courier.login", {"panel": "kiosk-1", "pass": token})
    assert (login["carrier"], login["courier_id"]) == ("sf", "c-900")
    res = await pcab.call("panel.deliver", {"panel": "kiosk-1", "pass": token,
                                            "parcel": delivery()})
    assert res["status"] == "deliver.confirm"
    # a refused parcel is taken back with the same pass (return flow)
    code = await pcab.code_of(res["parcel_id"])
    await while_open(pcab, "panel.pickup", {"panel": "kiosk-1", "code": code},
                     ("panel.refuse", {"panel": "kiosk-2", "reason": "damaged"}))
    back = await pcab.call("panel.return", {"panel": "kiosk-1", "pass": token,
                                            "parcel_id": res["parcel_id"]})
    assert back["status"] == "returned"
    # a sender's drop-off is collected with the same pass
    drop = await pcab.call("panel.dropoff", {"panel": "kiosk-1", "dropoff": dropoff()})
    got = await pcab.call("panel.collect", {"panel": "kiosk-1", "pass": token,
                                            "parcel_id": drop["parcel_id"]})
    assert got["status"] == "collected"
    # the chain names the pass by id, never the token; the grant table never saw this courier
    for op in await pcab.ops():
        text = json.dumps(op.body)
        assert token.split(".")[2] not in text
    used = [op for op in await pcab.ops() if op.body.get("pass_id") == "pass-deliver-1"]
    assert {op.kind for op in used} >= {"courier.login", "deliver.begin", "return.begin",
                                        "collect.begin"}
    assert all(op.actor == "courier:sf/c-900" for op in used)


async def test_a_group_pass_is_valid_at_a_cabinet_of_the_group(pcab: Cabinet) -> None:
    token = a_pass(cabinets=(), group="haidian-north")
    assert (await pcab.call("courier.login", {"pass": token}))["courier_id"] == "c-900"


def _mangled_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    return f"{head}.{payload}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"


def _other_claims(token: str) -> str:
    """The claims of a valid pass with the courier changed, under the original signature."""
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["cou"] = "c-evil"
    raw = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{raw}.{sig}"


@pytest.mark.parametrize(("make", "code"), [
    (lambda: "LP1.not-a-pass", "pass_malformed"),
    (lambda: "LP2.e30.AAAA", "pass_malformed"),
    (lambda: a_pass(hours=25), "pass_malformed"),
    (lambda: _mangled_signature(a_pass()), "pass_bad_signature"),
    (lambda: _other_claims(a_pass()), "pass_bad_signature"),
    (lambda: a_pass(FORGER), "pass_bad_signature"),
    (lambda: a_pass(YTO, carrier="yto"), "pass_wrong_carrier"),
    (lambda: a_pass(demo_key("jd"), carrier="jd"), "pass_wrong_carrier"),
    (lambda: a_pass(cabinets=("CAB-0002",)), "pass_wrong_cabinet"),
    (lambda: a_pass(cabinets=(), group="chaoyang"), "pass_wrong_cabinet"),
    (lambda: a_pass(start=timedelta(hours=1)), "pass_not_yet_valid"),
    (lambda: a_pass(start=timedelta(hours=-9)), "pass_expired"),
])
async def test_every_refusal_has_its_code_and_its_record(pcab: Cabinet, make: Any,
                                                          code: str) -> None:
    token = make()
    before = len(await pcab.ops())
    err = await pcab.refused("courier.login", {"panel": "kiosk-1", "pass": token})
    assert err.code == code
    err = await pcab.refused("panel.deliver", {"panel": "kiosk-1", "pass": token,
                                               "parcel": delivery()})
    assert err.code == code
    new = (await pcab.ops())[before:]
    assert [(op.kind, op.body["error"]) for op in new] == [("courier.login", code),
                                                           ("deliver.begin", code)]
    assert all(token not in json.dumps(op.body) for op in new)


async def test_a_pass_claiming_another_carrier_than_the_form_is_refused(pcab: Cabinet) -> None:
    err = await pcab.refused("courier.login", {"carrier": "yto", "pass": a_pass()})
    assert err.code == "pass_wrong_carrier"


async def test_a_revoked_pass_is_refused_from_the_revocation_on(pcab: Cabinet) -> None:
    token = a_pass(pass_id="pass-revoke-1")
    await pcab.call("courier.login", {"pass": token})
    expires = format_ts(datetime.now(UTC) + timedelta(hours=8))
    reply = await pcab.command("sf", "courier.revoke_pass",
                               {"passes": [{"pass_id": "pass-revoke-1", "expires": expires}]})
    assert reply["ok"], reply
    assert reply["result"]["revoked"] == 1
    err = await pcab.refused("panel.deliver", {"pass": token, "parcel": delivery()})
    assert err.code == "pass_revoked"
    # yto's revocation of the same id does not touch sf's pass: pass ids are per carrier
    other = await pcab.command("yto", "courier.revoke_pass",
                               {"passes": [{"pass_id": "pass-other-1", "expires": expires}]})
    assert other["ok"], other
    fresh = a_pass(pass_id="pass-other-1")
    assert (await pcab.call("courier.login", {"pass": fresh}))["carrier"] == "sf"
    # the revocation survives a restart (live state), and is repeated harmlessly
    await pcab.restart()
    err = await pcab.refused("courier.login", {"pass": token})
    assert err.code == "pass_revoked"
    again = await pcab.command("sf", "courier.revoke_pass",
                               {"passes": [{"pass_id": "pass-revoke-1", "expires": expires}]})
    assert again["result"] == {**again["result"], "revoked": 0, "unchanged": 1}


async def test_revocations_are_forgotten_once_their_passes_expired(pcab: Cabinet) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=1)
    reply = await pcab.command("sf", "courier.revoke_pass",
                               {"passes": [{"pass_id": "pass-short-1", "expires": format_ts(soon)}]})
    assert reply["result"]["revoked"] == 1
    assert "sf/pass-short-1" in pcab.d.parcels.cabinet.state.revoked_passes
    pcab.d.parcels.clock.advance(timedelta(seconds=5))  # type: ignore[attr-defined]
    later = format_ts(datetime.now(UTC) + timedelta(hours=2))
    await pcab.command("sf", "courier.revoke_pass",
                       {"passes": [{"pass_id": "pass-long-1", "expires": later}]})
    assert set(pcab.d.parcels.cabinet.state.revoked_passes) == {"sf/pass-long-1"}


def test_the_worked_example_of_docs_passes_verifies() -> None:
    """docs/passes.md's token, made with the seed 000102...1f, is what the verifier accepts."""
    token = ("LP1.eyJjYWIiOlsiQ0FCLTAwMDEiXSwiY2FyIjoic2YiLCJjb3UiOiJjLTEwMSIsImV4cCI6MTc5ODgx"
             "OTIwMCwibmJmIjoxNzk4NzkwNDAwLCJwaWQiOiJwN1FtMnhLYzlMdzQiLCJ2IjoxfQ.K-JUfkP9Bo_RizV"
             "hYaEZxESSNYPU75hmHqqoId40dQ2-U3BaJbfUesNxXim-10VKAu6hsNJrORQZsD5zivJCBA")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "passes.md").read_text()
    assert token in doc
    public = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    assert public_b64(Ed25519PrivateKey.from_private_bytes(bytes(range(32)))) == public
    claim = PassVerifier({"sf": base64.b64decode(public)}).check(token)
    assert (claim.carrier, claim.courier_id, claim.pass_id, claim.cabinets) == (
        "sf", "c-101", "p7Qm2xKc9Lw4", ("CAB-0001",))
    assert claim.expires - claim.not_before == timedelta(hours=8)


def test_the_example_issuer_makes_passes_the_cabinet_accepts(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "examples" / "issue_pass.py"
    key = tmp_path / "sf.key"
    made = subprocess.run([sys.executable, str(script), "--new-key", str(key)],
                          capture_output=True, text=True, check=True)
    assert key.stat().st_mode & 0o777 == 0o600
    out = subprocess.run([sys.executable, str(script), "--key", str(key), "--carrier", "sf",
                          "--courier", "c-5", "--group", "g1", "--hours", "2"],
                         capture_output=True, text=True, check=True)
    claim = PassVerifier({"sf": base64.b64decode(made.stdout.strip())}).check(out.stdout)
    assert (claim.courier_id, claim.group) == ("c-5", "g1")
    too_long = subprocess.run([sys.executable, str(script), "--key", str(key), "--carrier", "sf",
                               "--courier", "c-5", "--group", "g1", "--hours", "25"],
                              capture_output=True, text=True, check=False)
    assert too_long.returncode == 2
