"""Dapr's wire formats for pub/sub subscriptions, shared by every subscriber.

A subscriber declares its subscriptions at `GET /dapr/subscribe` (programmatic, v2 routing rules) and answers each
delivery with a status: SUCCESS (done), RETRY (transient: redeliver) or DROP (poison: to the dead-letter topic).
"""

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DeliveryStatus(StrEnum):
    SUCCESS = "SUCCESS"
    RETRY = "RETRY"
    DROP = "DROP"


class DeliveryAnswer(BaseModel):
    status: DeliveryStatus


class RoutingRule(BaseModel):
    match: str = Field(description="A CEL expression over the CloudEvent, e.g. event.type == 'order.created.v1'.")
    path: str


class Routes(BaseModel):
    rules: list[RoutingRule] = Field(default_factory=list)
    default: str = Field(description="Where an event that matches no rule goes (without it Dapr dead-letters it).")


class Subscription(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    pubsubname: str
    topic: str
    routes: Routes
    dead_letter_topic: str = Field(alias="deadLetterTopic")
    metadata: dict[str, str] = Field(default_factory=dict)


def route_by_type(event_type: str, path: str) -> RoutingRule:
    return RoutingRule(match=f"event.type == '{event_type}'", path=path)
