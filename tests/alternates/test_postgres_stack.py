"""The whole system with its state in PostgreSQL (components/alternates/postgres/): the paths that lean on the
store's guarantees (idempotency keys, the outbox's and the work index's ETag'd shards under contention, leases and
cancellation) on the real stack, and the orders and fulfillment records read back from PostgreSQL's own tables."""

import asyncio
import uuid

import httpx
from devstack.layout import Layout

# Collected here too, so run again on this module's stack (PostgreSQL): parked work and its lease live in the
# fulfillment store's record and work index.
from tests.e2e.test_cancellation import test_an_order_cancelled_while_parked_never_ships  # noqa: F401
from tests.support.fulfillment import created, shipments
from tests.support.orders import new_order, wait_for_status
from tests.support.postgres import is_row

CONCURRENT_CREATES = 40


def test_an_order_ships_and_is_delivered_and_both_records_are_rows_in_postgresql(
    order_api: httpx.Client, carrier_admin: httpx.Client, layout: Layout
) -> None:
    order_id = created(order_api)

    delivered = wait_for_status(order_api, order_id, "delivered", timeout=30)

    assert [entry["status"] for entry in delivered["history"]] == ["pending", "processing", "shipped", "delivered"]
    assert len(shipments(carrier_admin, order_id)) == 1
    assert is_row(layout, "orders_state", f"order-service||{order_id}")
    assert is_row(layout, "fulfillment_state", f"fulfillment-service||fulfillment|{order_id}")
    assert not is_row(layout, "orders_state", f"order-service||{order_id}-not-an-order")


def test_concurrent_creates_each_ship_exactly_once(order_api: httpx.Client, carrier_admin: httpx.Client) -> None:
    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(order_api.base_url), timeout=10) as client:
            return await asyncio.gather(*(client.post("/orders", json=new_order()) for _ in range(CONCURRENT_CREATES)))

    answers = asyncio.run(create_all())

    assert [answer.status_code for answer in answers] == [201] * CONCURRENT_CREATES
    order_ids = {answer.json()["id"] for answer in answers}
    assert len(order_ids) == CONCURRENT_CREATES
    for order_id in order_ids:
        wait_for_status(order_api, order_id, "shipped", timeout=30)
    assert all(len(shipments(carrier_admin, order_id)) == 1 for order_id in order_ids)


def test_a_repeated_create_with_one_idempotency_key_answers_the_same_order(order_api: httpx.Client) -> None:
    headers = {"Idempotency-Key": f"postgres-{uuid.uuid4()}"}
    body = new_order()

    first = order_api.post("/orders", json=body, headers=headers)
    again = order_api.post("/orders", json=body, headers=headers)
    different = order_api.post("/orders", json=new_order(currency="EUR"), headers=headers)

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert different.status_code == 422
