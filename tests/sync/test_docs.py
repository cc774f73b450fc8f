"""docs/asyncapi.yaml matches the payload models; the broker ACL example isolates carriers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lockerd.sync.payloads import PAYLOAD_MODELS
from lockerd.sync.topics import Topics

REPO = Path(__file__).resolve().parents[2]


def _doc() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docs" / "asyncapi.yaml").read_text())


def test_asyncapi_parses_and_is_version_3() -> None:
    doc = _doc()
    assert str(doc["asyncapi"]).startswith("3.")
    topics = Topics("lockers", "{cab}")
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert addresses == {topics.status, topics.state, topics.alerts,
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


def test_message_refs_resolve() -> None:
    doc = _doc()
    schemas = doc["components"]["schemas"]
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            ref = message["payload"]["$ref"]
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
