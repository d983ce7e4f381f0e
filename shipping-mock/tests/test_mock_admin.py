"""The admin views (shipments, request log), the reset, health and framework errors as problems."""

from __future__ import annotations

import httpx
import pytest
from shipping_mock_testkit import (
    assert_problem,
    create_shipment,
    new_key,
    new_order_id,
    parse_utc,
    requests_of,
    shipment_body,
    shipments_of,
)

pytestmark = pytest.mark.anyio


async def test_admin_shipments_are_filtered_by_order(carrier: httpx.AsyncClient) -> None:
    order_a, order_b = new_order_id(), new_order_id()
    key_a = new_key()
    a = (await create_shipment(carrier, shipment_body(order_a), key_a)).json()
    b1 = (await create_shipment(carrier, shipment_body(order_b), new_key())).json()
    b2 = (await create_shipment(carrier, shipment_body(order_b), new_key())).json()

    [record_a] = await shipments_of(carrier, order_a)
    assert record_a["shipment_id"] == a["shipment_id"]
    assert record_a["idempotency_key"] == key_a
    assert record_a["recipient"]["address"]["country"] == "NL"
    assert record_a["items"] == shipment_body(order_a)["items"]
    parse_utc(record_a["created_at"])
    assert record_a["voided_at"] is None
    assert record_a["delivered_at"] is None
    assert [s["shipment_id"] for s in await shipments_of(carrier, order_b)] == [b1["shipment_id"], b2["shipment_id"]]
    assert await shipments_of(carrier, new_order_id()) == []
    everything = (await carrier.get("/admin/shipments")).json()
    assert [s["shipment_id"] for s in everything] == [a["shipment_id"], b1["shipment_id"], b2["shipment_id"]]


async def test_admin_shipment_counts_count_shipments_and_distinct_orders(carrier: httpx.AsyncClient) -> None:
    assert (await carrier.get("/admin/shipments/count")).json() == {"shipments": 0, "orders": 0}
    order_a, order_b = new_order_id(), new_order_id()
    await create_shipment(carrier, shipment_body(order_a), new_key())
    await create_shipment(carrier, shipment_body(order_b), new_key())
    await create_shipment(carrier, shipment_body(order_b), new_key())

    assert (await carrier.get("/admin/shipments/count")).json() == {"shipments": 3, "orders": 2}


async def test_request_log_records_every_create_and_cancel_of_an_order(carrier: httpx.AsyncClient) -> None:
    order_id, other_order, key = new_order_id(), new_order_id(), new_key()
    created = (await create_shipment(carrier, shipment_body(order_id), key)).json()
    await create_shipment(carrier, shipment_body(order_id), key)
    await create_shipment(carrier, shipment_body(other_order), new_key())
    await carrier.get(f"/shipments/{created['shipment_id']}")  # reads are not logged
    await carrier.get("/shipments", params={"order_id": order_id})
    await carrier.post(f"/shipments/{created['shipment_id']}/cancel", headers={"Idempotency-Key": "cancel-1"})

    calls = await requests_of(carrier, order_id)

    assert [(c["method"], c["path"], c["idempotency_key"], c["outcome"]) for c in calls] == [
        ("POST", "/shipments", key, 201),
        ("POST", "/shipments", key, 200),
        ("POST", f"/shipments/{created['shipment_id']}/cancel", "cancel-1", 200),
    ]
    for call in calls:
        assert call["order_id"] == order_id
        assert parse_utc(call["arrived_at"]) <= parse_utc(call["finished_at"])
        assert 0 <= call["held_ms"] < 1000
    assert len((await carrier.get("/admin/requests")).json()) == 4


async def test_request_log_keeps_calls_that_failed_validation(carrier: httpx.AsyncClient) -> None:
    order_id = new_order_id()
    body = shipment_body(order_id, items=[])

    await carrier.post("/shipments", json=body)
    await create_shipment(carrier, body, new_key())

    assert [c["outcome"] for c in await requests_of(carrier, order_id)] == [400, 422]


async def test_clearing_state_forgets_shipments_keys_and_calls(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    first = (await create_shipment(carrier, shipment_body(order_id), key)).json()

    cleared = await carrier.delete("/admin/shipments")

    assert cleared.status_code == 204
    assert (await carrier.get("/admin/shipments")).json() == []
    assert (await carrier.get("/admin/requests")).json() == []
    assert_problem(await carrier.get(f"/shipments/{first['shipment_id']}"), 404)
    again = await create_shipment(carrier, shipment_body(order_id), key)
    assert again.status_code == 201
    assert again.json()["shipment_id"] != first["shipment_id"]


async def test_healthz(carrier: httpx.AsyncClient) -> None:
    response = await carrier.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_unknown_route_and_wrong_method_are_problems(carrier: httpx.AsyncClient) -> None:
    assert_problem(await carrier.get("/nowhere"), 404)
    assert_problem(await carrier.delete("/shipments"), 405)
