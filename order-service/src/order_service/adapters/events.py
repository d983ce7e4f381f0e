"""Publishing owed events: the port, and its adapter over the Dapr pub/sub API."""

from abc import ABC, abstractmethod

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import BulkPublishEntry
from order_contracts.cloudevents import CLOUDEVENTS_CONTENT_TYPE
from order_contracts.names import PARTITION_KEY_METADATA

from order_service.adapters.outbox import OutboxEntry


class AbstractEventPublisher(ABC):
    @abstractmethod
    async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
        """Hand the entries' CloudEvents to the broker, at most one per order (their relative order is not kept);
        the refused ones' event ids, each with the reason. Raises if the call as a whole failed."""


class DaprEventPublisher(AbstractEventPublisher):
    """Publishes each CloudEvent exactly as recorded (same id every time), keyed by its order id, many in one call
    (Dapr's bulk publish: one Kafka produce request for the lot)."""

    def __init__(self, client: DaprClient, *, pubsub: str, topic: str) -> None:
        self._client = client
        self._pubsub = pubsub
        self._topic = topic

    async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
        response = await self._client.publish_events(
            self._pubsub,
            self._topic,
            [
                BulkPublishEntry(
                    entry.cloud_event,
                    metadata={PARTITION_KEY_METADATA: entry.partition_key},
                    content_type=CLOUDEVENTS_CONTENT_TYPE,
                    entry_id=entry.event_id,
                )
                for entry in entries
            ],
        )
        return {failed.entry_id: failed.error for failed in response.failed_entries}
