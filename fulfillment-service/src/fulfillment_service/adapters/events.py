"""Publishing fulfillment progress over the Dapr pub/sub API."""

import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import BulkPublishEntry
from order_contracts.cloudevents import CLOUDEVENTS_CONTENT_TYPE, envelope
from order_contracts.events import EventData
from order_contracts.names import PARTITION_KEY_METADATA
from service_runtime.coalescing import Coalescer

from fulfillment_service.domain import FulfillmentRecord

logger = logging.getLogger(__name__)

EVENTS_PER_PUBLISH = 100
"""Most events in one coalesced bulk publish: about 1 KB each."""


class AbstractEventPublisher(ABC):
    @abstractmethod
    async def publish(self, event: EventData) -> None: ...

    @abstractmethod
    async def publish_many(self, events: list[EventData]) -> set[str]:
        """Publish events of distinct orders in one call (their relative order is not kept); the order ids of
        those the broker refused (all of them if the call failed)."""

    async def publish_owed(self, record: FulfillmentRecord, published: set[str]) -> None:
        """Publish the events the record owes before the change that owes them is committed, and forget those the
        broker took: one commit instead of two. Safe because every id is stable (a commit that then fails, and is
        applied again, owes the same ids: `published` remembers them, and consumers de-duplicate any repeat).
        An event the broker refuses stays owed, is committed with the change, and a later look publishes it."""
        try:
            for event in record.owed_events:
                if event.event_id() not in published:
                    await self.publish(event)
                    published.add(event.event_id())
        except Exception as error:  # the broker is down or slow: keep it owed
            logger.warning("publishing deferred", extra={"order_id": record.order_id, "error": repr(error)})
        record.settle([event for event in record.owed_events if event.event_id() in published])


class EventRefusedError(Exception):
    """The broker did not take the event (it was one of a bulk publish's failed entries)."""


class DaprEventPublisher(AbstractEventPublisher):
    """Publishes each event as a structured CloudEvent with a stable id, keyed by its order id. Events published
    while a publish is with the sidecar go together in the next one (a bulk publish); two events of one order never
    share a bulk publish (it does not keep their relative order), so each order's events go out in order."""

    def __init__(self, client: DaprClient, *, pubsub: str, topic: str, source: str) -> None:
        self._client = client
        self._pubsub = pubsub
        self._topic = topic
        self._source = source
        self._publishes = Coalescer(
            self._publish_batch, max_batch=EVENTS_PER_PUBLISH, name="fulfillment-publishes", key=_order_of
        )

    async def publish_many(self, events: list[EventData]) -> set[str]:
        now = datetime.now(UTC)
        entries = [
            BulkPublishEntry(
                envelope(event, source=self._source, time=now).model_dump_json(exclude_none=True),
                metadata={PARTITION_KEY_METADATA: event.order_id},
                content_type=CLOUDEVENTS_CONTENT_TYPE,
                entry_id=event.order_id,
            )
            for event in events
        ]
        try:
            response = await self._client.publish_events(self._pubsub, self._topic, entries)
        except Exception as error:  # the broker is down or slow: every one of them is to be published again
            logger.warning("bulk publish failed", extra={"events": len(events), "error": repr(error)})
            return {event.order_id for event in events}
        return {failed.entry_id for failed in response.failed_entries}

    async def publish(self, event: EventData) -> None:
        await self._publishes.submit(event)

    async def _publish_batch(self, events: list[EventData]) -> list[Exception | None]:
        if len(events) == 1:
            await self._publish_one(events[0])
            return [None]
        refused = await self.publish_many(events)
        return [EventRefusedError(event.event_id()) if event.order_id in refused else None for event in events]

    async def _publish_one(self, event: EventData) -> None:
        cloud_event = envelope(event, source=self._source, time=datetime.now(UTC))
        await self._client.publish_event(
            self._pubsub,
            self._topic,
            cloud_event.model_dump_json(exclude_none=True),
            publish_metadata={PARTITION_KEY_METADATA: event.order_id},
            data_content_type=CLOUDEVENTS_CONTENT_TYPE,
        )


def _order_of(event: EventData) -> str:
    return event.order_id
