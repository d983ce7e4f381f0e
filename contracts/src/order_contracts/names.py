"""Wire names shared by every service: the pub/sub component, topics and CloudEvent types."""

from typing import Final

PUBSUB_NAME: Final = "order-pubsub"
"""The Dapr pub/sub component (components/pubsub.yaml) that carries every order event."""

ORDER_EVENTS_TOPIC: Final = "order-events"
DEAD_LETTER_TOPIC: Final = "order-events-dlq"

PARTITION_KEY_METADATA: Final = "partitionKey"
"""Dapr publish metadata that becomes the Kafka message key: always the order id, so one order stays in order."""
