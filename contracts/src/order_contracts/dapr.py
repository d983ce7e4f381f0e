"""Dapr's wire formats for pub/sub subscriptions, shared by every subscriber.

A subscriber declares its subscriptions at `GET /dapr/subscribe` (programmatic, v2 routing rules) and answers each
delivery with a status: SUCCESS (done), RETRY (transient: redeliver) or DROP (poison: to the dead-letter topic).

Both services subscribe in bulk: the sidecar hands the app a batch of events (`BulkDelivery`) and the app answers
a status per entry (`BulkAnswer`), so one batch costs one request and, in the app, one state read and one
transaction. Dapr's runtime retries only the entries answered RETRY (the inbound resiliency policy) and sends those
still failing when the retries run out to the dead-letter topic. The apps never answer DROP in a batch: they put
poison on the dead-letter topic themselves and answer SUCCESS (service_runtime/dead_letters.py says why).
A bulk subscription is routed to one path only: with routing rules, the runtime splits a batch by path and calls the
paths in no fixed order, so one order's events could be handled out of order.
"""

from enum import StrEnum
from typing import Any

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


class BulkSubscribe(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    enabled: bool = True
    max_messages_count: int = Field(alias="maxMessagesCount", description="The most events in one batch.")
    max_await_duration_ms: int = Field(
        alias="maxAwaitDurationMs",
        description="A batch that is not full is handed over at the latest this long after the last one was (the "
        "Kafka component flushes on a timer per partition): the most latency batching adds.",
    )


class Subscription(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    pubsubname: str
    topic: str
    routes: Routes
    dead_letter_topic: str = Field(alias="deadLetterTopic")
    bulk_subscribe: BulkSubscribe | None = Field(default=None, alias="bulkSubscribe")
    metadata: dict[str, str] = Field(default_factory=dict)


class BulkEntry(BaseModel):
    """One event of a batch: `event` is the CloudEvent as a JSON object (the runtime has parsed it)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    entry_id: str = Field(alias="entryId")
    event: Any = None
    content_type: str | None = Field(default=None, alias="contentType")
    metadata: dict[str, str] = Field(default_factory=dict)
    """What the broker told about the message: for Kafka, `__key` (the message key), `__partition`, `__offset`..."""


class BulkDelivery(BaseModel):
    """A batch of events as the sidecar delivers it (structured CloudEvents, in the order of their partition)."""

    model_config = ConfigDict(extra="ignore")

    entries: list[BulkEntry]


class EntryStatus(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    entry_id: str = Field(alias="entryId")
    status: DeliveryStatus


class BulkAnswer(BaseModel):
    """The app's answer to a batch: a status for each entry. An entry left out is retried by the runtime."""

    statuses: list[EntryStatus]


def route_by_type(event_type: str, path: str) -> RoutingRule:
    return RoutingRule(match=f"event.type == '{event_type}'", path=path)
