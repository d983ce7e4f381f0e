"""Cancelling an order stops its fulfillment: parked work is dropped and never ships; a shipment the carrier
already created is voided. Either way the order stays `cancelled`, whatever fulfillment reports afterwards."""

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import yaml
from confluent_kafka import Message, Producer
from devstack.kafka import BOOTSTRAP_SERVERS
from devstack.layout import Layout
from order_contracts.cloudevents import envelope
from order_contracts.events import EventData, OrderCancelled, OrderCreated

from tests.support.fulfillment import carrier_calls, created, fulfillment_record, shipments
from tests.support.kafka import wait_until_group_consumed
from tests.support.orders import VALID_ORDER, wait_for_status
from tests.support.polling import eventually

ORDER_EVENTS = "order-events"
FULFILLMENT_GROUP = "fulfillment-service"
"""The consumer group of fulfillment's sidecar on order-events (components/pubsub.yaml: the app id)."""


def _fulfillment_status(order_id: str, status: str) -> dict[str, Any] | None:
    record = fulfillment_record(order_id)
    return record if record is not None and record["status"] == status else None


def test_an_order_cancelled_while_parked_never_ships(order_api: httpx.Client, carrier_admin: httpx.Client) -> None:
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    order_id = created(order_api)
    eventually(
        lambda: (record := fulfillment_record(order_id)) is not None and record["attempts"] and not record["leased_to"],
        timeout=30,
        what="a failed attempt, no call in progress: the order is parked",
    )

    assert order_api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"}).status_code == 200
    # Fulfillment's own record: cancelled, and no call in progress (the next attempt may have begun before the
    # cancel arrived; its answer, still "down", must be heard before the carrier comes back).
    eventually(
        lambda: (record := _fulfillment_status(order_id, "cancelled")) is not None and not record["leased_to"],
        timeout=60,
        what="fulfillment to drop the work",
    )
    carrier_admin.delete("/admin/faults").raise_for_status()
    later_order = created(order_api)
    wait_for_status(order_api, later_order, "shipped", timeout=30)  # the worker runs again: the parked order is gone

    assert shipments(carrier_admin, order_id) == []
    assert order_api.get(f"/orders/{order_id}").json()["status"] == "cancelled"


def test_an_order_cancelled_after_its_shipment_was_created_has_that_shipment_voided(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    # The carrier stores the shipment at once but answers 3 s later: a cancel now finds it created but unreported.
    carrier_admin.put("/admin/faults", json={"latency_ms": 3000}).raise_for_status()
    order_id = created(order_api)
    eventually(
        lambda: len(shipments(carrier_admin, order_id)) == 1, timeout=10, what="the carrier to create the shipment"
    )

    cancelled = order_api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"})

    assert cancelled.status_code == 200, cancelled.text
    voided = eventually(
        lambda: (
            ((order := order_api.get(f"/orders/{order_id}").json())["fulfillment"] or {}).get("voided_at") and order
        ),
        timeout=30,
        what="fulfillment.voided.v1 folded into the order",
    )
    assert voided["status"] == "cancelled"
    [shipment] = shipments(carrier_admin, order_id)
    assert shipment["status"] == "voided"
    assert _fulfillment_status(order_id, "voided") is not None


def test_a_void_the_carrier_refuses_shows_on_the_cancelled_order_and_is_asked_again(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    """The shipment is delivered before fulfillment can void it: the carrier refuses (409), and the order says so
    (its shipment is live) instead of looking voided, while fulfillment keeps asking."""
    # Created at once, answered 3 s later: the cancel comes first, so the answer finds the order to be voided.
    carrier_admin.put("/admin/faults", json={"latency_ms": 3000}).raise_for_status()
    order_id = created(order_api)
    eventually(
        lambda: len(shipments(carrier_admin, order_id)) == 1, timeout=10, what="the carrier to create the shipment"
    )
    assert order_api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"}).status_code == 200
    # The carrier goes down for the calls that follow (the create's answer is on its way already): every void fails
    # until the carrier, which goes on delivering, has delivered the shipment.
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    eventually(
        lambda: shipments(carrier_admin, order_id)[0]["status"] == "delivered",
        timeout=30,
        what="the carrier to deliver the shipment (fulfillment accepts the report: it is voiding the order)",
    )
    carrier_admin.delete("/admin/faults").raise_for_status()

    refused = eventually(
        lambda: (
            ((order := order_api.get(f"/orders/{order_id}").json())["fulfillment"] or {}).get("void_refused_at")
            and order
        ),
        timeout=90,
        what="fulfillment.void_refused.v1 folded into the order",
    )
    assert refused["status"] == "cancelled"
    assert refused["fulfillment"]["voided_at"] is None
    assert "delivered" in refused["fulfillment"]["void_refusal"]
    record = fulfillment_record(order_id)
    assert record is not None
    assert record["status"] == "voiding"  # still asking the carrier
    assert record["next_attempt_at"] is not None
    [shipment] = shipments(carrier_admin, order_id)
    assert shipment["status"] == "delivered"


def _tries_per_attempt() -> int:
    """One attempt through the sidecar is the first try and the retries of components/resiliency.yaml."""
    resiliency = yaml.safe_load((Layout.discover().root / "components" / "resiliency.yaml").read_text())
    return int(resiliency["spec"]["policies"]["retries"]["carrierRetries"]["maxRetries"]) + 1


def test_a_cancel_after_a_call_whose_answer_was_lost_still_voids_the_shipment_that_call_created(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    # The carrier stores every shipment and withholds the answer for 30 s: fulfillment never hears of it.
    carrier_admin.put("/admin/faults", json={"timeout_rate": 1.0}).raise_for_status()
    order_id = created(order_api)
    eventually(
        lambda: len(shipments(carrier_admin, order_id)) == 1, timeout=10, what="the carrier to store the shipment"
    )
    assert order_api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"}).status_code == 200

    tries = _tries_per_attempt()
    eventually(
        lambda: (
            len([call for call in carrier_calls(carrier_admin, order_id) if call["outcome"] == "abandoned"]) >= tries
        ),
        timeout=tries * 12,
        interval=0.5,
        what=f"the attempt to end unheard: {tries} tries, each abandoned after 10 s",
    )
    carrier_admin.delete("/admin/faults").raise_for_status()

    voided = eventually(
        lambda: (
            ((order := order_api.get(f"/orders/{order_id}").json())["fulfillment"] or {}).get("voided_at") and order
        ),
        timeout=30,
        what="fulfillment to find the shipment by the order reference and void it",
    )
    assert voided["status"] == "cancelled"
    [shipment] = shipments(carrier_admin, order_id)
    assert shipment["status"] == "voided"
    record = fulfillment_record(order_id)
    assert record is not None
    assert (record["status"], record["shipment"]["shipment_id"]) == ("voided", shipment["shipment_id"])


def test_a_cancel_is_refused_once_the_order_service_recorded_shipped(order_api: httpx.Client) -> None:
    order_id = created(order_api)
    wait_for_status(order_api, order_id, "shipped", timeout=10)

    refused = order_api.post(f"/orders/{order_id}/cancel")

    assert refused.status_code == 409
    assert order_api.get(f"/orders/{order_id}").json()["status"] in {"shipped", "delivered"}


def _published_in_order(order_id: str, events: list[EventData]) -> list[tuple[int, int]]:
    """Put `events` on order-events under the order's key (one partition, in this order), as the outbox relay and
    a dead-letter replay do; where each landed: (partition, offset)."""
    landed: list[tuple[int, int]] = []

    def on_delivery(error: object, message: Message) -> None:
        assert error is None, error
        landed.append((message.partition() or 0, message.offset() or 0))

    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "enable.idempotence": True, "log_level": 0})
    for event in events:
        cloud_event = envelope(event, source="test-replay", time=datetime.now(UTC))
        producer.produce(ORDER_EVENTS, cloud_event.model_dump_json().encode(), key=order_id, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    return landed


def test_a_cancel_that_reaches_fulfillment_before_its_create_is_remembered_and_the_order_never_ships(
    carrier_admin: httpx.Client,
) -> None:
    """The create was dead-lettered (say) and replayed after the cancel: the late create must not ship the order."""
    order_id = f"order-replayed-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    cancel = OrderCancelled(order_id=order_id, reason="changed my mind", cancelled_at=now)
    create = OrderCreated.model_validate({**VALID_ORDER, "order_id": order_id, "total": "25.00", "created_at": now})

    *_, (partition, create_offset) = _published_in_order(order_id, [cancel, create])

    wait_until_group_consumed(FULFILLMENT_GROUP, ORDER_EVENTS, partition, create_offset, timeout=30)
    assert fulfillment_record(order_id) is None
    assert shipments(carrier_admin, order_id) == []
    assert carrier_calls(carrier_admin, order_id) == []
