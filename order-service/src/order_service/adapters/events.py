"""Publishing owed events: the port, and its adapter over the Dapr pub/sub API."""

from abc import ABC, abstractmethod

from dapr.aio.clients import DaprClient
from order_contracts.cloudevents import CLOUDEVENTS_CONTENT_TYPE
from order_contracts.names import PARTITION_KEY_METADATA

from order_service.adapters.outbox import OutboxEntry


class AbstractEventPublisher(ABC):
    @abstractmethod
    async def publish(self, entry: OutboxEntry) -> None:
        """Hand the entry's CloudEvent to the broker; raises if the broker did not take it."""


class DaprEventPublisher(AbstractEventPublisher):
    """Publishes the CloudEvent exactly as recorded (same id every time), keyed by its order id."""

    def __init__(self, client: DaprClient, *, pubsub: str, topic: str) -> None:
        self._client = client
        self._pubsub = pubsub
        self._topic = topic

    async def publish(self, entry: OutboxEntry) -> None:
        await self._client.publish_event(
            self._pubsub,
            self._topic,
            entry.cloud_event,
            publish_metadata={PARTITION_KEY_METADATA: entry.partition_key},
            data_content_type=CLOUDEVENTS_CONTENT_TYPE,
        )
