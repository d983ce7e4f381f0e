"""What the order service puts on Kafka, read back with a plain Kafka consumer: a structured CloudEvent of type
order.created.v1 whose message key is the order id."""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from devstack.kafka import BOOTSTRAP_SERVERS
from devstack.stack import Stack
from order_contracts.events import OrderCreated

from tests.support.orders import new_order
from tests.support.polling import eventually


@pytest.fixture
def order_events(stack: Stack) -> Iterator[Consumer]:
    """A consumer positioned at the current end of every partition of order-events: it sees only new messages."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP_SERVERS,
            "group.id": f"test-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    partitions = consumer.list_topics("order-events", timeout=10).topics["order-events"].partitions
    positions = []
    for partition in partitions:
        _, high = consumer.get_watermark_offsets(TopicPartition("order-events", partition), timeout=10)
        positions.append(TopicPartition("order-events", partition, high))
    consumer.assign(positions)
    try:
        yield consumer
    finally:
        consumer.close()


def _next_message_about(consumer: Consumer, order_id: str, event_type: str) -> tuple[bytes, dict[str, Any]]:
    def probe() -> tuple[bytes, dict[str, Any]] | None:
        message = consumer.poll(0.2)
        if message is None or message.error():
            return None
        key, value = message.key(), message.value()
        assert key is not None, "every order event is keyed"
        assert value is not None
        event: dict[str, Any] = json.loads(value)
        if event.get("subject") == order_id and event.get("type") == event_type:
            return key, event
        return None

    return eventually(probe, timeout=10, interval=0, what=f"{event_type} for {order_id} on order-events")


def test_order_created_is_a_cloudevent_keyed_by_the_order_id(order_api: httpx.Client, order_events: Consumer) -> None:
    order = order_api.post("/orders", json=new_order()).json()

    key, event = _next_message_about(order_events, order["id"], "order.created.v1")

    assert key == order["id"].encode()
    assert event["specversion"] == "1.0"
    assert event["source"] == "order-service"
    assert event["id"] == f"order.created.v1:{order['id']}"
    created = OrderCreated.model_validate(event["data"])
    assert created.order_id == order["id"]
    assert created.total == "25.00"


def test_fulfillment_progress_is_keyed_by_the_order_id_too(order_api: httpx.Client, order_events: Consumer) -> None:
    order = order_api.post("/orders", json=new_order()).json()

    for event_type in ("fulfillment.started.v1", "fulfillment.shipped.v1"):
        key, event = _next_message_about(order_events, order["id"], event_type)
        assert key == order["id"].encode()
        assert event["source"] == "fulfillment-service"
