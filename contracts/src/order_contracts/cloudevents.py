"""CloudEvents 1.0 envelopes for order events, as published through Dapr and delivered back by it."""

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from order_contracts.events import EVENT_MODEL_BY_TYPE, EventData

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"


class CloudEvent(BaseModel):
    """A structured-mode CloudEvent. Dapr adds its own attributes (topic, pubsubname, traceparent...): kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: AwareDatetime | None = None
    datacontenttype: str = "application/json"
    data: Any = None


class UnreadableEventError(Exception):
    """A delivered message whose data does not fit its event type: poison, to be dead-lettered."""


class UnknownEventTypeError(Exception):
    """A well-formed CloudEvent of a type this contract does not define (perhaps a newer one): not ours."""


def envelope(event: EventData, *, source: str, time: datetime) -> CloudEvent:
    """Wrap an event for publishing: its id is stable, so sending the same event again is recognisable."""
    return CloudEvent(
        id=event.event_id(),
        source=source,
        type=event.event_type,
        subject=event.order_id,
        time=time,
        data=event.model_dump(mode="json"),
    )


def parse_cloud_event(delivered: bytes) -> CloudEvent:
    """The CloudEvent envelope of a delivered message; raises UnreadableEventError if it is none (poison)."""
    try:
        return CloudEvent.model_validate_json(delivered)
    except ValidationError as error:
        raise UnreadableEventError(f"not a CloudEvent: {error.error_count()} violations") from error


def read_event(cloud_event: CloudEvent) -> EventData:
    """The typed payload of a delivered CloudEvent.

    Raises UnknownEventTypeError for a type this contract does not define, UnreadableEventError for invalid data.
    """
    model = EVENT_MODEL_BY_TYPE.get(cloud_event.type)
    if model is None:
        raise UnknownEventTypeError(cloud_event.type)
    try:
        return model.model_validate(cloud_event.data)
    except ValidationError as error:
        raise UnreadableEventError(f"invalid {cloud_event.type} data: {error.error_count()} violations") from error
