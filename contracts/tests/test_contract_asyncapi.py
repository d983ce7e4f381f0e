"""contracts/asyncapi.yaml is a valid AsyncAPI 3.0.0 document that describes every event type, and its payloads
accept what the services really publish.

The official AsyncAPI JSON Schema comes from the npm package @asyncapi/specs, pinned in contracts/asyncapi-schema/
and installed by `make contracts-deps`. Everything is resolved offline.
"""

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from order_contracts.cloudevents import CLOUDEVENTS_CONTENT_TYPE, envelope
from order_contracts.events import EVENT_MODELS, FULFILLMENT_EVENT_MODELS, ORDER_EVENT_MODELS, EventData
from order_contracts.names import (
    FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC,
    FULFILLMENT_EVENTS_TOPIC,
    ORDER_EVENTS_DEAD_LETTER_TOPIC,
    ORDER_EVENTS_TOPIC,
)
from order_contracts.schema_files import schema_filename
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT7

CONTRACTS_DIR = Path(__file__).resolve().parents[1]
ASYNCAPI_PATH = CONTRACTS_DIR / "asyncapi.yaml"
ASYNCAPI_URI = ASYNCAPI_PATH.as_uri()
ASYNCAPI_SPECS_PACKAGE = CONTRACTS_DIR / "asyncapi-schema" / "node_modules" / "@asyncapi" / "specs"
ASYNCAPI_JSON_SCHEMA = ASYNCAPI_SPECS_PACKAGE / "schemas" / "3.0.0.json"
EVENT_TYPES = {model.event_type for model in EVENT_MODELS}
EVENT_TYPES_BY_TOPIC = {
    ORDER_EVENTS_TOPIC: {model.event_type for model in ORDER_EVENT_MODELS},
    ORDER_EVENTS_DEAD_LETTER_TOPIC: {model.event_type for model in ORDER_EVENT_MODELS},
    FULFILLMENT_EVENTS_TOPIC: {model.event_type for model in FULFILLMENT_EVENT_MODELS},
    FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC: {model.event_type for model in FULFILLMENT_EVENT_MODELS},
}
"""Each topic, with the event types it carries: a dead-letter topic carries what its topic does."""


@cache
def asyncapi_schema_validator() -> Draft7Validator:
    """The official AsyncAPI 3.0.0 schema (draft-07). Its `definitions` are keyed by their own `$id`s: registering
    each one under that id resolves every `$ref` without touching the network.

    Called from the tests (not a fixture) so that a missing schema fails the test rather than erroring its setup.
    """
    if not ASYNCAPI_JSON_SCHEMA.is_file():
        pytest.fail(
            f"{ASYNCAPI_JSON_SCHEMA} is missing: run `make contracts-deps` "
            "(npm ci --prefix contracts/asyncapi-schema) to install the pinned @asyncapi/specs",
            pytrace=False,
        )
    schema = json.loads(ASYNCAPI_JSON_SCHEMA.read_text("utf-8"))
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(definition, default_specification=DRAFT7))
        for uri, definition in schema["definitions"].items()
    )
    return Draft7Validator(schema, registry=registry)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ASYNCAPI_PATH.read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def document_registry(document: dict[str, Any]) -> Registry[Any]:
    """asyncapi.yaml and the schema files it points at, each under its file URI (as its relative `$ref`s say)."""
    schemas = [
        (path.as_uri(), Resource.from_contents(json.loads(path.read_text("utf-8"))))
        for path in sorted((CONTRACTS_DIR / "schemas").glob("*.schema.json"))
    ]
    return Registry().with_resources([(ASYNCAPI_URI, Resource.opaque(document)), *schemas]).crawl()


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs_in(item)


def schema_errors(validator: Draft7Validator, instance: Any) -> list[str]:
    """Each error as its most specific cause (an AsyncAPI error is usually deep inside a oneOf)."""
    causes = (best_match([error]) for error in validator.iter_errors(instance))
    return [f"{cause.json_path}: {cause.message}" for cause in causes if cause is not None]


def test_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert schema_errors(asyncapi_schema_validator(), document) == []


def test_the_asyncapi_schema_really_checks_nested_objects(document: dict[str, Any]) -> None:
    # Guards against a schema that validates anything because its $refs lead nowhere: a wrong Kafka binding version
    # is only caught through several levels of $ref by internal id.
    broken = copy.deepcopy(document)
    broken["components"]["messageTraits"]["orderEvent"]["bindings"]["kafka"]["bindingVersion"] = "9.9.9"

    assert schema_errors(asyncapi_schema_validator(), broken) != []


def test_every_ref_resolves(document: dict[str, Any], document_registry: Registry[Any]) -> None:
    resolver = document_registry.resolver(base_uri=ASYNCAPI_URI)
    unresolvable = []
    for ref in sorted(set(refs_in(document))):
        try:
            resolver.lookup(ref)
        except Unresolvable as error:
            unresolvable.append(f"{ref} ({error!r})")

    assert unresolvable == []


def test_every_event_type_is_a_message_on_its_topic_and_its_dead_letter_topic(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    assert set(messages) == EVENT_TYPES, "asyncapi.yaml components.messages must list exactly the EVENT_MODELS types"
    for event_type, message in messages.items():
        assert message["name"] == event_type
        assert f"./schemas/{schema_filename(event_type)}" in set(refs_in(message["payload"]))

    channels = document["channels"]
    assert {channel["address"] for channel in channels.values()} == set(EVENT_TYPES_BY_TOPIC)
    for name, channel in channels.items():
        assert name == channel["address"]
        types = EVENT_TYPES_BY_TOPIC[channel["address"]]
        assert channel["messages"] == {t: {"$ref": f"#/components/messages/{t}"} for t in sorted(types)}


def test_every_operation_sends_or_receives_messages_of_its_own_channel(document: dict[str, Any]) -> None:
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        assert all(ref.startswith(f"{channel}/messages/") for ref in refs_in(operation["messages"])), name


def test_every_event_type_has_exactly_one_sender(document: dict[str, Any]) -> None:
    sent = [
        ref.rsplit("/", 1)[-1]
        for operation in document["operations"].values()
        if operation["action"] == "send"
        for ref in refs_in(operation["messages"])
    ]

    assert sorted(sent) == sorted(EVENT_TYPES)


def test_messages_are_structured_cloudevents_keyed_by_order_id(document: dict[str, Any]) -> None:
    trait = document["components"]["messageTraits"]["orderEvent"]
    assert trait["contentType"] == CLOUDEVENTS_CONTENT_TYPE
    assert trait["bindings"]["kafka"]["key"]["type"] == "string"
    for message in document["components"]["messages"].values():
        assert message["traits"] == [{"$ref": "#/components/messageTraits/orderEvent"}]


def test_message_payload_accepts_the_published_envelope_and_no_other_type(
    event_example: EventData, document_registry: Registry[Any]
) -> None:
    def payload_validator(event_type: str) -> Draft7Validator:
        ref = f"{ASYNCAPI_URI}#/components/messages/{event_type}/payload"
        return Draft7Validator({"$ref": ref}, registry=document_registry, format_checker=Draft7Validator.FORMAT_CHECKER)

    published = envelope(event_example, source="contract-test", time=datetime(2026, 3, 14, 9, 27, tzinfo=UTC))
    wire = json.loads(published.model_dump_json())

    assert schema_errors(payload_validator(event_example.event_type), wire) == []
    for other in sorted(EVENT_TYPES - {event_example.event_type}):
        assert not payload_validator(other).is_valid(wire), f"the {other} message accepts a {event_example.event_type}"
