"""The order API over the wire, on the real stack: strict validation, idempotent create under concurrency, unique
ids at volume, and cancellation with its event on Kafka."""

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer

from tests.support.kafka import next_message_about
from tests.support.orders import VALID_ORDER, new_order, wait_for_status
from tests.support.polling import eventually

BASE_URL = "http://127.0.0.1:8000"


def _with(path: str, value: Any) -> dict[str, Any]:
    """VALID_ORDER with the member at `path` (a JSON Pointer) set to `value`, or removed if value is REMOVE."""
    order = new_order()
    *parents, last = path.strip("/").split("/")
    node: Any = order
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is REMOVE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return order


REMOVE = object()

INVALID_ORDERS = [
    ("quantity as a string", _with("/items/0/quantity", "2"), {"/items/0/quantity"}),
    ("quantity 2.0", _with("/items/0/quantity", 2.0), {"/items/0/quantity"}),
    ("quantity 0", _with("/items/0/quantity", 0), {"/items/0/quantity"}),
    ("lower-case country", _with("/customer/shipping_address/country", "gb"), {"/customer/shipping_address/country"}),
    ("unassigned country", _with("/customer/shipping_address/country", "XX"), {"/customer/shipping_address/country"}),
    ("alpha-3 country", _with("/customer/shipping_address/country", "GBR"), {"/customer/shipping_address/country"}),
    ("missing currency", _with("/currency", REMOVE), {"/currency"}),
    ("unknown currency", _with("/currency", "ABC"), {"/currency"}),
    ("unknown member", _with("/customer/nickname", "JD"), {"/customer/nickname"}),
    ("bad email", _with("/customer/email", "jane@"), {"/customer/email"}),
    ("too many decimals for JPY", {**new_order(), "currency": "JPY"}, {"/items/0/unit_price"}),
    ("no items", _with("/items", []), {"/items"}),
    (
        "repeated sku",
        _with("/items", [VALID_ORDER["items"][0], VALID_ORDER["items"][0]]),
        {"/items/1/sku"},
    ),
    (
        "several violations at once",
        {**_with("/items/0/quantity", 1001), "currency": "gbp"},
        {"/items/0/quantity", "/currency"},
    ),
]


@pytest.mark.parametrize(("case", "body", "pointers"), INVALID_ORDERS, ids=[case for case, _, _ in INVALID_ORDERS])
def test_an_invalid_order_is_refused_with_a_pointer_to_every_violation(
    order_api: httpx.Client, case: str, body: dict[str, Any], pointers: set[str]
) -> None:
    response = order_api.post("/orders", json=body)

    assert response.status_code == 422, case
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 422
    assert {violation["pointer"] for violation in problem["errors"]} == pointers


async def _post_all(bodies: list[dict[str, Any]], headers: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(base_url=BASE_URL, timeout=60, limits=limits) as client:
        return await asyncio.gather(*(client.post("/orders", json=body, headers=headers) for body in bodies))


def test_concurrent_creates_with_one_idempotency_key_make_exactly_one_order(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    key = f"concurrent-{uuid.uuid4()}"

    responses = asyncio.run(_post_all([new_order()] * 20, {"Idempotency-Key": key}))

    created = [response for response in responses if response.status_code == 201]
    told_to_retry = [response for response in responses if response.status_code == 409]
    assert len(created) + len(told_to_retry) == 20
    assert all(response.headers["retry-after"] for response in told_to_retry)
    order_ids = {response.json()["id"] for response in created}
    assert len(order_ids) == 1
    assert sum(1 for response in created if response.headers.get("idempotent-replayed") != "true") <= 1
    [order_id] = order_ids
    wait_for_status(order_api, order_id, "shipped", timeout=10)
    assert len(carrier_admin.get("/admin/shipments", params={"order_id": order_id}).json()) == 1


def test_a_thousand_concurrent_creates_get_a_thousand_distinct_ids(carrier_admin: httpx.Client) -> None:
    responses = asyncio.run(_post_all([new_order()] * 1000, {}))

    assert [response.status_code for response in responses] == [201] * 1000
    order_ids = [response.json()["id"] for response in responses]
    assert len(set(order_ids)) == 1000

    def all_shipped() -> bool:
        shipped = {shipment["order_id"] for shipment in carrier_admin.get("/admin/shipments").json()}
        return shipped.issuperset(order_ids)

    # The backlog drains before the next test: every order reaches the carrier, once.
    eventually(all_shipped, timeout=120, interval=0.5, what="all 1000 orders shipped")


def test_a_processing_order_can_be_cancelled_and_order_cancelled_is_published(
    order_api: httpx.Client, carrier_admin: httpx.Client, order_events: Consumer
) -> None:
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    order_id = order_api.post("/orders", json=new_order()).json()["id"]
    wait_for_status(order_api, order_id, "processing", timeout=5)

    cancelled = order_api.post(f"/orders/{order_id}/cancel", json={"reason": "changed my mind"})

    assert cancelled.status_code == 200
    order = cancelled.json()
    assert order["status"] == "cancelled"
    assert [entry["status"] for entry in order["history"]] == ["pending", "processing", "cancelled"]
    key, event = next_message_about(order_events, order_id, "order.cancelled.v1")
    assert key == order_id.encode()
    assert event["data"]["reason"] == "changed my mind"
    assert order_api.post(f"/orders/{order_id}/cancel").status_code == 200

    # What fulfillment does with the cancel (drop the parked work, never ship) is tests/e2e/test_cancellation.py.


def test_a_shipped_order_cannot_be_cancelled(order_api: httpx.Client) -> None:
    order_id = order_api.post("/orders", json=new_order()).json()["id"]
    wait_for_status(order_api, order_id, "shipped", timeout=5)

    refused = order_api.post(f"/orders/{order_id}/cancel")

    assert refused.status_code == 409
    assert refused.json()["order_status"] == "shipped"
