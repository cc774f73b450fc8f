"""docs/asyncapi.yaml matches the payload models and error codes; the broker ACL isolates carriers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from lockerd.app.events import Alert
from lockerd.domain.errors import ErrorCode
from lockerd.parcels.escalation import Escalator
from lockerd.sync.alerts import alert_payload
from lockerd.sync.payloads import COMMAND_BODIES, PAYLOAD_MODELS, ErrorInfo
from lockerd.sync.topics import Topics
from tests.sync.contract import errors

REPO = Path(__file__).resolve().parents[2]


def _doc() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())


def test_asyncapi_parses_and_is_version_3() -> None:
    doc = _doc()
    assert str(doc["asyncapi"]).startswith("3.")
    topics = Topics("lockers", "{cab}")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert addresses == {topics.status, topics.state, topics.alerts, topics.chain, topics.health,
                         f"{topics.base}/carriers/{{carrier}}/cmd",
                         f"{topics.base}/carriers/{{carrier}}/reply",
                         f"{topics.base}/carriers/{{carrier}}/events"}


def test_every_payload_model_has_a_matching_schema() -> None:
    schemas = _doc()["components"]["schemas"]
    for name, model in PAYLOAD_MODELS.items():
        assert name in schemas, f"{name} missing from docs/asyncapi.yaml"
        documented = schemas[name]
        generated = model.model_json_schema()
        assert set(documented.get("properties", {})) == set(generated.get("properties", {})), name
        assert set(documented.get("required", [])) <= set(documented.get("properties", {})), name
        # every field the model requires is required in the document too
        assert set(generated.get("required", [])) <= set(documented.get("required", [])), name


def test_reply_error_codes_are_exactly_the_error_code_enum() -> None:
    """Every code the daemon can put in `error.code` is in the schema's closed enum, and the
    schema names no code the daemon never sends."""
    documented = _doc()["components"]["schemas"]["ErrorCode"]["enum"]
    assert len(documented) == len(set(documented)), "duplicate codes in docs/asyncapi.yaml"
    assert set(documented) == {code.value for code in ErrorCode}
    generated = ErrorInfo.model_json_schema()
    enum = generated["$defs"]["ErrorCode"]["enum"] if "$defs" in generated else \
        generated["properties"]["code"]["enum"]
    assert set(enum) == set(documented)


def test_command_types_are_the_ones_with_a_body_model() -> None:
    doc = _doc()
    documented = {doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[-1]]["name"]
                  for ref in doc["channels"]["cmd"]["messages"].values()}
    assert documented == set(COMMAND_BODIES)


def test_mqtt_doc_table_names_only_real_codes() -> None:
    """docs/mqtt.md's refusal table lists codes of the enum only (a renamed code fails here)."""
    text = (REPO / "docs" / "mqtt.md").read_text()
    table = text.split("| code | when |", 1)[1].split("\n\n", 1)[0]
    named = {cell.strip("` ") for line in table.splitlines()[2:]
             for cell in line.split("|")[1].split(",") if cell.strip("` ") not in ("", "…")}
    assert named, "no codes found in the docs/mqtt.md table"
    assert named <= {code.value for code in ErrorCode}, named - {c.value for c in ErrorCode}


def test_message_refs_resolve() -> None:
    doc = _doc()
    schemas = doc["components"]["schemas"]
    messages = doc["components"]["messages"]
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            ref = messages[message["$ref"].rsplit("/", 1)[-1]]["payload"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in schemas


def test_acl_grants_each_carrier_only_its_own_topics() -> None:
    user = None
    grants: dict[str, list[str]] = {}
    for line in (REPO / "deploy" / "mosquitto" / "acl.example").read_text().splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "user":
            user = words[1]
        elif words[0] == "topic":
            assert user is not None
            grants.setdefault(user, []).append(words[-1])
    carriers = {u.removeprefix("carrier-") for u in grants if u.startswith("carrier-")}
    assert carriers == {"sf", "yto"}
    for carrier in carriers:
        for topic in grants[f"carrier-{carrier}"]:
            parts = topic.split("/")
            if "carriers" in parts:
                assert parts[parts.index("carriers") + 1] == carrier, topic
            assert "#" not in topic


def _json_blocks(section: str) -> list[Any]:
    """The ```json examples under one `##`/`###` heading of docs/mqtt.md."""
    text = (REPO / "docs" / "mqtt.md").read_text()
    body = text.split(section + "\n", 1)[1]
    body = re.split(r"\n##+ ", body, maxsplit=1)[0]
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", body, re.S)]


def test_mqtt_doc_examples_of_receipts_and_escalations_match_the_contract() -> None:
    """The prose's example payloads validate against asyncapi.yaml; the receipt is the
    snapshot's (a changed event shape fails here until the docs follow)."""
    [receipt] = _json_blocks("## Receipts of ID-checked handovers (`parcel.receipt`)")
    assert errors("ParcelReceiptEvent", receipt) == []
    snapshot = json.loads((Path(__file__).parent / "snapshots" / "parcel.receipt.json").read_text())
    assert receipt == snapshot
    raised, cleared = _json_blocks("### Escalation of unresolved incidents (`incident_escalated`)")
    for alert in (raised, cleared):
        assert errors("Alert", alert) == []
        assert alert["kind"] == "incident_escalated"
    assert (raised["active"], raised["severity"], cleared["active"], cleared["severity"]) == (
        True, "critical", False, "info")
    assert raised["incident"] == cleared["incident"]
    # ... and are what the escalator really sends for that incident (ids and times aside)
    sent: list[Alert] = []
    escalator = Escalator([24.0, 48.0, 72.0], sent.append)
    escalator.check([{"kind": "compartment_blocked", "compartment": 7, "age_s": 49 * 3600.0,
                      "detail": "blocked: door jammed"}])
    escalator.check([])
    made = [alert_payload(a) for a in sent]
    for doc_alert, real in zip((raised, cleared), made, strict=True):
        assert {k: v for k, v in real.items() if k not in ("id", "ts")} == \
            {k: v for k, v in doc_alert.items() if k not in ("id", "ts")}
