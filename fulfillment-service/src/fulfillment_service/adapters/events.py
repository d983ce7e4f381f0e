"""Publishing fulfillment progress over the Dapr pub/sub API."""

from abc import ABC, abstractmethod
from datetime import UTC, datetime

from dapr.aio.clients import DaprClient
from order_contracts.cloudevents import CLOUDEVENTS_CONTENT_TYPE, envelope
from order_contracts.events import EventData
from order_contracts.names import PARTITION_KEY_METADATA


class AbstractEventPublisher(ABC):
    @abstractmethod
    async def publish(self, event: EventData) -> None: ...


class DaprEventPublisher(AbstractEventPublisher):
    """Publishes each event as a structured CloudEvent with a stable id, keyed by its order id."""

    def __init__(self, client: DaprClient, *, pubsub: str, topic: str, source: str) -> None:
        self._client = client
        self._pubsub = pubsub
        self._topic = topic
        self._source = source

    async def publish(self, event: EventData) -> None:
        cloud_event = envelope(event, source=self._source, time=datetime.now(UTC))
        await self._client.publish_event(
            self._pubsub,
            self._topic,
            cloud_event.model_dump_json(exclude_none=True),
            publish_metadata={PARTITION_KEY_METADATA: event.order_id},
            data_content_type=CLOUDEVENTS_CONTENT_TYPE,
        )
