"""What the order service puts on Kafka, read back with a plain Kafka consumer: a structured CloudEvent of type
order.created.v1 whose message key is the order id."""

import httpx
from confluent_kafka import Consumer
from order_contracts.events import OrderCreated

from tests.support.kafka import next_message_about
from tests.support.orders import new_order


def test_order_created_is_a_cloudevent_keyed_by_the_order_id(order_api: httpx.Client, order_events: Consumer) -> None:
    order = order_api.post("/orders", json=new_order()).json()

    key, event = next_message_about(order_events, order["id"], "order.created.v1")

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
        key, event = next_message_about(order_events, order["id"], event_type)
        assert key == order["id"].encode()
        assert event["source"] == "fulfillment-service"
