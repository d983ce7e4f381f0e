"""Fulfillment on the real stack: pickup never waits on the carrier, the carrier is called through the sidecar with
Dapr's resiliency policy (10 s per attempt, retries, breaker), and every order ships exactly once, however slow or
flaky the carrier is."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer
from devstack.kafka import BOOTSTRAP_SERVERS

from tests.support.fulfillment import carrier_calls, created, rejected_order, shipments
from tests.support.kafka import next_record_about, wait_until_group_consumed
from tests.support.orders import new_order, wait_for_status
from tests.support.polling import eventually

PICKUP_WITHIN_SECONDS = 5.0
ATTEMPT_TIMEOUT_SECONDS = 10.0  # components/resiliency.yaml, carrierAttempt
SLOWER_THAN_THE_TIMEOUT_MS = 12_000


def _pickup_seconds(order: dict[str, Any]) -> float:
    picked_up_at = datetime.fromisoformat(order["fulfillment"]["picked_up_at"])
    return (picked_up_at - datetime.fromisoformat(order["created_at"])).total_seconds()


def _picked_up(order_api: httpx.Client, order_id: str, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        order: dict[str, Any] = order_api.get(f"/orders/{order_id}").json()
        return order if (order.get("fulfillment") or {}).get("picked_up_at") else None

    return eventually(probe, timeout=timeout, what=f"order {order_id} picked up")


def test_an_order_goes_pending_processing_shipped_with_one_shipment_and_its_events_keyed_by_order_id(
    order_api: httpx.Client, carrier_admin: httpx.Client, fulfillment_events: Consumer
) -> None:
    order_id = created(order_api)

    shipped = wait_for_status(order_api, order_id, "shipped", timeout=10)

    assert [entry["status"] for entry in shipped["history"]][:3] == ["pending", "processing", "shipped"]
    assert _pickup_seconds(shipped) < PICKUP_WITHIN_SECONDS
    assert len(shipments(carrier_admin, order_id)) == 1
    for event_type in ("fulfillment.started.v1", "fulfillment.shipped.v1"):
        key, event, _ = next_record_about(fulfillment_events, order_id, event_type)
        assert key == order_id.encode()
        assert event["source"] == "fulfillment-service"


def test_a_carrier_slower_than_the_timeout_keeps_the_order_processing_until_it_answers_then_it_ships_once(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    carrier_admin.put("/admin/faults", json={"latency_ms": SLOWER_THAN_THE_TIMEOUT_MS}).raise_for_status()
    order_id = created(order_api)

    # Dapr gives up on each try after 10 s and tries again: the carrier sees the caller leave every time.
    abandoned = eventually(
        lambda: [call for call in carrier_calls(carrier_admin, order_id) if call["outcome"] == "abandoned"][1:] or None,
        timeout=3 * ATTEMPT_TIMEOUT_SECONDS + 5,
        interval=0.5,
        what="two carrier calls abandoned by the caller",
    )
    assert all(abs(call["held_ms"] / 1000 - ATTEMPT_TIMEOUT_SECONDS) < 1.0 for call in abandoned)
    assert order_api.get(f"/orders/{order_id}").json()["status"] == "processing"
    started = time.monotonic()
    assert order_api.post("/orders", json=new_order()).status_code == 201
    assert time.monotonic() - started < 0.5  # taking orders never waits on the carrier

    carrier_admin.delete("/admin/faults").raise_for_status()

    shipped = wait_for_status(order_api, order_id, "shipped", timeout=90)
    [shipment] = shipments(carrier_admin, order_id)
    assert shipment["shipment_id"] == shipped["fulfillment"]["shipment_id"]


def test_sixty_orders_are_picked_up_within_5_s_while_every_carrier_call_times_out_and_all_ship_once_it_recovers(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    carrier_admin.put("/admin/faults", json={"latency_ms": SLOWER_THAN_THE_TIMEOUT_MS}).raise_for_status()
    with ThreadPoolExecutor(max_workers=10) as pool:
        order_ids = list(pool.map(lambda _: created(order_api), range(60)))

    picked_up = [_picked_up(order_api, order_id, timeout=15) for order_id in order_ids]

    assert max(_pickup_seconds(order) for order in picked_up) < PICKUP_WITHIN_SECONDS
    assert {order["status"] for order in picked_up} == {"processing"}
    carrier_admin.delete("/admin/faults").raise_for_status()
    for order_id in order_ids:
        wait_for_status(order_api, order_id, "shipped", timeout=180)
    assert [len(shipments(carrier_admin, order_id)) for order_id in order_ids] == [1] * len(order_ids)


def test_with_30_percent_errors_and_5_percent_timeouts_a_burst_of_orders_all_ship_each_exactly_once(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    carrier_admin.put("/admin/faults", json={"error_rate": 0.3, "timeout_rate": 0.05}).raise_for_status()
    order_ids = [created(order_api) for _ in range(30)]

    for order_id in order_ids:
        wait_for_status(order_api, order_id, "shipped", timeout=120)

    assert [len(shipments(carrier_admin, order_id)) for order_id in order_ids] == [1] * len(order_ids)
    outcomes = [call["outcome"] for order_id in order_ids for call in carrier_calls(carrier_admin, order_id)]
    assert 503 in outcomes  # the faults did fire: these orders shipped through failures


def test_a_permanent_rejection_fails_the_order_with_the_reason_after_one_carrier_call(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    order_id = created(order_api, rejected_order())

    failed = wait_for_status(order_api, order_id, "failed", timeout=10)

    assert failed["fulfillment"]["failure_reason"]
    assert [call["outcome"] for call in carrier_calls(carrier_admin, order_id)] == [422]
    assert shipments(carrier_admin, order_id) == []


def test_the_same_order_created_event_delivered_twice_makes_one_shipment(
    order_api: httpx.Client, carrier_admin: httpx.Client, order_events: Consumer
) -> None:
    order_id = created(order_api)
    wait_for_status(order_api, order_id, "shipped", timeout=10)
    key, event, _ = next_record_about(order_events, order_id, "order.created.v1")

    delivered: list[tuple[int, int]] = []
    producer = Producer({"bootstrap.servers": BOOTSTRAP_SERVERS, "log_level": 0})
    producer.produce(
        "order-events",
        key=key,
        value=json.dumps(event).encode(),
        on_delivery=lambda _, message: delivered.append((message.partition() or 0, message.offset() or 0)),
    )
    producer.flush(10)
    [(partition, offset)] = delivered
    wait_until_group_consumed("fulfillment-service", "order-events", partition, offset)

    assert len(shipments(carrier_admin, order_id)) == 1
    assert [call["path"] for call in carrier_calls(carrier_admin, order_id)] == ["/shipments"]
