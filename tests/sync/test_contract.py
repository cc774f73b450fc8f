"""docs/asyncapi.yaml is the truth: the AsyncAPI CLI accepts it, its patterns are the code's, its
worked examples compute, and every message of a demo day (plus the snapshots) validates against
the schema of its type."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any

from lockerd.domain.errors import ErrorCode
from lockerd.domain.ids import COURIER_PATTERN, PARCEL_ID_PATTERN, WAYBILL_PATTERN
from lockerd.domain.pins import (
    MIN_SUPPLIED_ITERATIONS,
    PIN_HASH_PATTERN,
    PIN_PATTERN,
    WEAK_PIN_PATTERNS,
    hash_pin,
    pin_hash_is_valid,
    pin_is_acceptable,
    verify_pin,
)
from lockerd.sync import signing
from lockerd.sync.feed import EVENT_TYPES
from lockerd.sync.payloads import COMMAND_BODIES, IN_TIME_PATTERN, OUT_TIME_PATTERN
from tests.fixtures.paths import REPO
from tests.sync.contract import DOC_PATH, doc, errors, messages, reply_schemas

SNAPSHOTS = Path(__file__).parent / "snapshots"
CLI = REPO / ".ci-tools" / "asyncapi" / "node_modules" / ".bin" / "asyncapi"


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = doc()["components"]["schemas"]
    return schemas


# ------------------------------------------------------------------ the AsyncAPI CLI


def _cli(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ASYNCAPI_METRICS": "false", "SUPPRESS_NO_CONFIG_WARNING": "1",
           "NODE_ENV": "development"}
    return subprocess.run([str(CLI), "validate", str(path), "--fail-severity", "warn"],
                          capture_output=True, text=True, timeout=180, env=env, check=False)


def test_the_asyncapi_cli_validates_the_document(tmp_path: Path) -> None:
    # Never skipped: scripts/test installs the CLI into .ci-tools/ before pytest runs.
    assert CLI.exists(), "the AsyncAPI CLI is not installed: run scripts/test, which installs it"
    good = _cli(DOC_PATH)
    assert good.returncode == 0, good.stdout + good.stderr
    assert f"File {DOC_PATH} is valid" in good.stdout
    # the check can fail: a message pointing at a schema that does not exist is an error
    broken = tmp_path / "asyncapi.yaml"
    broken.write_text(DOC_PATH.read_text().replace("#/components/schemas/CourierGrantBody'",
                                                   "#/components/schemas/NoSuchBody'"))
    bad = _cli(broken)
    assert bad.returncode != 0, bad.stdout


# ------------------------------------------------------------------ types and descriptions


def test_types_in_the_document_are_the_types_in_the_code() -> None:
    names = [m["name"] for m in doc()["components"]["messages"].values()]
    assert len(names) == len(set(names)), "a message name (a type) is used twice"
    assert set(messages("events")) == EVENT_TYPES
    assert set(messages("cmd")) == set(COMMAND_BODIES)
    assert set(reply_schemas()) == set(COMMAND_BODIES)
    assert set(_schemas()["ErrorCode"]["enum"]) == {c.value for c in ErrorCode}
    # each per-type schema pins its type (the discriminator) and names its own body
    for name, schema in {**messages("events"), **messages("cmd")}.items():
        refine = _schemas()[schema]["allOf"][1]["properties"]
        assert refine["type"] == {"const": name}, schema
        assert refine["body"]["$ref"].endswith("Body"), schema
    for union, channel in (("Event", "events"), ("Command", "cmd")):
        assert _schemas()[union]["discriminator"] == "type"
        listed = {r["$ref"].rsplit("/", 1)[-1] for r in _schemas()[union]["oneOf"]}
        assert listed == set(messages(channel).values())


def _undescribed(schema: dict[str, Any], where: str) -> list[str]:
    found: list[str] = []
    for field, spec in schema.get("properties", {}).items():
        if not spec.get("description"):
            target = spec.get("$ref", "").rsplit("/", 1)[-1]
            if not (target and _schemas()[target].get("description")):
                found.append(f"{where}.{field}")
        if spec.get("type") == "object":
            found.extend(_undescribed(spec, f"{where}.{field}"))
    return found


def test_every_field_is_described() -> None:
    missing = [f for name, schema in _schemas().items() for f in _undescribed(schema, name)
               if not f.endswith(".result") or name != "ReplyEnvelope"]
    assert missing == []


# ------------------------------------------------------------------ rules identical in code


def test_patterns_in_the_document_are_the_codes() -> None:
    s = _schemas()
    assert s["Pin"]["pattern"] == PIN_PATTERN
    assert [p["pattern"] for p in s["Pin"]["not"]["anyOf"]] == list(WEAK_PIN_PATTERNS)
    assert s["PinHash"]["pattern"] == PIN_HASH_PATTERN
    assert s["InTime"]["pattern"] == IN_TIME_PATTERN
    assert s["Time"]["pattern"] == OUT_TIME_PATTERN
    assert s["CourierId"]["pattern"] == COURIER_PATTERN
    assert s["Waybill"]["pattern"] == WAYBILL_PATTERN
    assert s["ParcelId"]["pattern"] == PARCEL_ID_PATTERN


def test_the_pin_schema_accepts_exactly_the_pins_the_cabinet_accepts() -> None:
    rng = random.Random(14)
    runs = [("".join(str((d + step * i) % 10) for i in range(n)))
            for n in range(5, 14) for d in range(10) for step in (0, 1, 9)]
    samples = runs + ["".join(rng.choice("0123456789") for _ in range(rng.randint(4, 14)))
                      for _ in range(3000)] + ["48291a", " 482913", "482913\n"]
    for pin in samples:
        assert (errors("Pin", pin) == []) is pin_is_acceptable(pin), pin


def test_the_pin_hash_schema_and_the_cabinet_agree() -> None:
    example = re.search(r"\$pbkdf2-sha256\$i=[0-9]+\S+", _schemas()["PinHash"]["description"])
    assert example is not None
    assert verify_pin("482913", example.group(0))
    salt = bytes(range(16))
    cases = [hash_pin("482913", salt, MIN_SUPPLIED_ITERATIONS),
             hash_pin("482913", salt, MIN_SUPPLIED_ITERATIONS - 1),
             hash_pin("482913", salt * 4, 10_000_000), hash_pin("482913", salt * 5, 20_000),
             hash_pin("482913", salt[:15], 20_000), hash_pin("482913", salt, 100_000)[:-1],
             hash_pin("482913", salt, 100_000).replace("$i=", "$i=0"),
             "pbkdf2_sha256$20000$" + "01" * 16 + "$" + "ab" * 32, "x" * 32]
    for encoded in cases:
        cabinet = pin_hash_is_valid(encoded, MIN_SUPPLIED_ITERATIONS)
        assert (errors("PinHash", encoded) == []) is cabinet, encoded


# ------------------------------------------------------------------ the signature example


def _block(text: str, label: str) -> str:
    match = re.search(rf"```\w+ {label}\n(.*?)\n```", text, re.S)
    assert match is not None, label
    return match.group(1)


def test_the_worked_signature_example_recomputes(tmp_path: Path) -> None:
    text = (REPO / "docs" / "mqtt.md").read_text()
    key_file = tmp_path / "sf.key"
    key_file.write_text(_block(text, "key-file") + "\n")
    key = signing.load_hmac_key(key_file)
    topic = _block(text, "topic")
    command = json.loads(_block(text, "command"))
    signed = _block(text, "signing-input").encode("utf-8")
    assert signing.signing_input(topic, command) == signed
    assert signing.sign(key, topic, command) == _block(text, "sig")
    assert signing.verify(key, topic, {**command, "sig": _block(text, "sig")}, _block(text, "sig"))
    assert errors("CourierRevokeCommand", {**command, "sig": _block(text, "sig")}) == []


# ------------------------------------------------------------------ snapshots


def snapshot_name(message: str) -> str:
    """File name of a message's snapshot: its name, spaces as underscores."""
    return message.replace(" ", "_") + ".json"


def documented_messages() -> dict[str, str]:
    """Every message the document names -> its payload schema."""
    comps = doc()["components"]["messages"]
    return {m["name"]: m["payload"]["$ref"].rsplit("/", 1)[-1] for m in comps.values()}


def test_one_snapshot_per_message_and_each_validates() -> None:
    files = {p.name for p in SNAPSHOTS.glob("*.json")}
    wanted = {snapshot_name(m) for m in documented_messages()}
    assert files == wanted, (sorted(wanted - files), sorted(files - wanted))
    for name, schema in documented_messages().items():
        payload = json.loads((SNAPSHOTS / snapshot_name(name)).read_text())
        assert errors(schema, payload) == [], name


def test_a_wrong_message_is_caught() -> None:
    """The day test below is not vacuous: a body with a field too many or one missing fails."""
    event = json.loads((SNAPSHOTS / "parcel.deposited.json").read_text())
    assert errors("ParcelDepositedEvent", {**event, "body": {**event["body"], "extra": 1}})
    body = {k: v for k, v in event["body"].items() if k != "pickup_code"}
    assert errors("ParcelDepositedEvent", {**event, "body": body})
    assert errors("ParcelDepositedEvent", {**event, "ts": "2026-01-31T08:00:00Z"})
    assert errors("ParcelPickedUpEvent", event)


def update_snapshots() -> bool:
    """LOCKERD_UPDATE_SNAPSHOTS=1 rewrites the snapshots from a demo day."""
    return os.environ.get("LOCKERD_UPDATE_SNAPSHOTS") == "1"


def write_snapshot(name: str, payload: dict[str, Any]) -> None:
    (SNAPSHOTS / snapshot_name(name)).write_text(
        json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

