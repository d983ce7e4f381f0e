"""What the services put on Kafka, read back with a plain Kafka consumer: structured CloudEvents keyed by the order
id, the order service's on order-events and fulfillment's progress on fulfillment-events, and only there."""

import httpx
from confluent_kafka import Consumer
from order_contracts.events import OrderCreated

from tests.support.kafka import end_offsets, event_types_about, next_message_about
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


def test_fulfillment_progress_is_keyed_by_the_order_id_too(
    order_api: httpx.Client, fulfillment_events: Consumer
) -> None:
    order = order_api.post("/orders", json=new_order()).json()

    for event_type in ("fulfillment.started.v1", "fulfillment.shipped.v1"):
        key, event = next_message_about(fulfillment_events, order["id"], event_type)
        assert key == order["id"].encode()
        assert event["source"] == "fulfillment-service"


def test_fulfillment_progress_is_on_fulfillment_events_and_not_on_order_events(
    order_api: httpx.Client, fulfillment_events: Consumer
) -> None:
    order_events_before = end_offsets("order-events")
    order = order_api.post("/orders", json=new_order()).json()

    for event_type in ("fulfillment.started.v1", "fulfillment.shipped.v1"):
        next_message_about(fulfillment_events, order["id"], event_type)

    # Fulfillment publishes one event at a time, each once the broker took the one before: had it put any on
    # order-events, it would be there by now, between order.created.v1 (which fulfillment started from) and the end.
    on_order_events = event_types_about("order-events", order["id"], since=order_events_before)
    assert "order.created.v1" in on_order_events
    assert [event_type for event_type in on_order_events if event_type.startswith("fulfillment.")] == []
