"""Wire names shared by every service: the pub/sub component, topics and CloudEvent types."""

from typing import Final

PUBSUB_NAME: Final = "order-pubsub"
"""The Dapr pub/sub component (components/pubsub.yaml) that carries every order event."""

ORDER_EVENTS_TOPIC: Final = "order-events"
"""The order service's events (order.created.v1, order.cancelled.v1); fulfillment subscribes to it."""
ORDER_EVENTS_DEAD_LETTER_TOPIC: Final = "order-events-dlq"
FULFILLMENT_EVENTS_TOPIC: Final = "fulfillment-events"
"""Fulfillment progress (every fulfillment.* type); the order service subscribes to it."""
FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC: Final = "fulfillment-events-dlq"

PARTITION_KEY_METADATA: Final = "partitionKey"
"""Dapr publish metadata that becomes the Kafka message key: always the order id, so one order stays in order."""
