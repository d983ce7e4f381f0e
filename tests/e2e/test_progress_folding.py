"""Fulfillment progress delivered twice and out of order, on the real stack: the order ends as if each event had
arrived once, in lifecycle order. The events are published on fulfillment-events through the order service's sidecar,
as any publisher's would be."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from confluent_kafka import Consumer

from tests.support.fulfillment import sidecar_headers
from tests.support.kafka import next_record_about, wait_until_group_consumed
from tests.support.orders import new_order, wait_for_status
from tests.support.polling import eventually

PUBLISH = "http://127.0.0.1:3500/v1.0/publish/order-pubsub/fulfillment-events"


def publish(event_id: str, event_type: str, order_id: str, data: dict[str, Any]) -> None:
    cloud_event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "test-publisher",
        "type": event_type,
        "subject": order_id,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": {"order_id": order_id, **data},
    }
    response = httpx.post(
        PUBLISH,
        params={"metadata.partitionKey": order_id},
        content=json.dumps(cloud_event),
        headers={"Content-Type": "application/cloudevents+json", **sidecar_headers()},
        timeout=10,
    )
    assert response.status_code == 204, response.text


def test_a_duplicate_and_a_late_event_leave_the_order_as_if_each_came_once_in_order(
    order_api: httpx.Client, carrier_admin: httpx.Client, fulfillment_events: Consumer
) -> None:
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()  # keep real fulfillment out of it
    order_id = order_api.post("/orders", json=new_order()).json()["id"]
    wait_for_status(order_api, order_id, "processing", timeout=5)
    shipped = {
        "carrier": "Test Parcel",
        "tracking_number": "TP-1",
        "shipment_id": "test-shipment",
        "shipped_at": datetime.now(UTC).isoformat(),
        "attempts": 1,
    }
    late_started = {"picked_up_at": datetime.now(UTC).isoformat()}

    publish(f"fulfillment.shipped.v1:{order_id}", "fulfillment.shipped.v1", order_id, shipped)
    publish(f"fulfillment.shipped.v1:{order_id}", "fulfillment.shipped.v1", order_id, shipped)  # redelivered
    publish(f"late-{uuid.uuid4()}", "fulfillment.started.v1", order_id, late_started)  # arrives after shipped

    for _ in range(2):
        next_record_about(fulfillment_events, order_id, "fulfillment.shipped.v1")
    *_, (partition, offset) = next_record_about(fulfillment_events, order_id, "fulfillment.started.v1")
    wait_until_group_consumed("order-service", "fulfillment-events", partition, offset)
    order = order_api.get(f"/orders/{order_id}").json()
    assert order["status"] == "shipped"
    assert [entry["status"] for entry in order["history"]] == ["pending", "processing", "shipped"]
    assert order["fulfillment"]["tracking_number"] == "TP-1"

    # Let real fulfillment ship it, so no parked work outlives the test.
    carrier_admin.delete("/admin/faults").raise_for_status()
    eventually(
        lambda: carrier_admin.get("/admin/shipments", params={"order_id": order_id}).json(),
        timeout=30,
        what="fulfillment's retried carrier call",
    )
