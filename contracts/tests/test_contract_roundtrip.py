"""What a writer serialises validates against the checked-in schema, and a reader reads it back.

Readers ignore fields they do not know (so adding an optional field is not breaking) and reject a payload that lacks
a required field.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from order_contracts.cloudevents import CloudEvent, envelope, read_event
from order_contracts.events import EventData
from order_contracts.schema_files import ENVELOPE_NAME, schema_filename
from pydantic import ValidationError

SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "schemas"
PUBLISHED_AT = datetime(2026, 3, 14, 9, 27, tzinfo=UTC)


def checked_in_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS_DIR / schema_filename(name)).read_text("utf-8"))
    return schema


def checked_in_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(checked_in_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def wire_json(event: EventData) -> dict[str, Any]:
    """The event's data exactly as it travels: serialised to JSON text and parsed back."""
    parsed: dict[str, Any] = json.loads(event.model_dump_json())
    return parsed


def test_date_time_format_is_really_checked() -> None:
    # jsonschema checks `date-time` only when rfc3339-validator is installed; without it, it silently accepts anything.
    assert not checked_in_validator("fulfillment.started.v1").is_valid({"order_id": "o-1", "picked_up_at": "soon"})


def test_serialised_event_validates_against_its_schema_and_reads_back(event_example: EventData) -> None:
    data = wire_json(event_example)

    errors = [error.message for error in checked_in_validator(event_example.event_type).iter_errors(data)]

    assert errors == []
    assert type(event_example).model_validate_json(json.dumps(data)) == event_example


def test_serialised_envelope_validates_against_the_envelope_schema_and_reads_back(event_example: EventData) -> None:
    cloud_event = envelope(event_example, source="contract-test", time=PUBLISHED_AT)
    wire: dict[str, Any] = json.loads(cloud_event.model_dump_json())

    errors = [error.message for error in checked_in_validator(ENVELOPE_NAME).iter_errors(wire)]

    assert errors == []
    assert wire["type"] == event_example.event_type
    assert read_event(CloudEvent.model_validate_json(json.dumps(wire))) == event_example


def test_reader_ignores_unknown_fields(event_example: EventData) -> None:
    data = wire_json(event_example) | {"added_in_a_later_minor_change": {"any": ["json", 1]}}

    assert checked_in_validator(event_example.event_type).is_valid(data)
    assert type(event_example).model_validate(data) == event_example


def test_reader_rejects_a_payload_missing_a_required_field(event_example: EventData) -> None:
    validator = checked_in_validator(event_example.event_type)
    required: list[str] = checked_in_schema(event_example.event_type)["required"]
    assert "order_id" in required

    for field in required:
        data = {key: value for key, value in wire_json(event_example).items() if key != field}
        assert not validator.is_valid(data), f"the schema accepts {event_example.event_type} without {field}"
        with pytest.raises(ValidationError, match=field):
            type(event_example).model_validate(data)
