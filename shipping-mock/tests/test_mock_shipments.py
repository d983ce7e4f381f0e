"""The carrier API without faults: create, replay, validation, rejection, read, cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import anyio
import httpx
import pytest
from shipping_mock.store import s10_check_digit
from shipping_mock_testkit import (
    assert_problem,
    create_shipment,
    new_key,
    new_order_id,
    shipment_body,
    shipments_of,
)

pytestmark = pytest.mark.anyio


async def test_create_answers_201_with_a_label_created_shipment(carrier: httpx.AsyncClient) -> None:
    order_id = new_order_id()

    response = await create_shipment(carrier, shipment_body(order_id), new_key())

    assert response.status_code == 201, response.text
    shipment = response.json()
    assert set(shipment) == {
        "shipment_id",
        "order_id",
        "carrier",
        "tracking_number",
        "status",
        "estimated_delivery",
    }
    assert shipment["order_id"] == order_id
    assert shipment["carrier"] == "Acme Parcel"
    assert shipment["status"] == "label_created"
    assert shipment["shipment_id"].startswith("shp_")
    tracking = shipment["tracking_number"]
    assert len(tracking) == 13
    assert tracking[:2] == "AP"
    assert tracking[-2:] == "ZZ"
    assert int(tracking[10]) == s10_check_digit(tracking[2:10])
    assert date.fromisoformat(shipment["estimated_delivery"]) > date.today()

    fetched = await carrier.get(f"/shipments/{shipment['shipment_id']}")
    assert fetched.status_code == 200
    assert fetched.json() == shipment


async def test_same_key_again_answers_200_with_the_same_shipment(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()

    first = await create_shipment(carrier, shipment_body(order_id), key)
    second = await create_shipment(carrier, shipment_body(order_id), key)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json() == first.json()
    assert [s["shipment_id"] for s in await shipments_of(carrier, order_id)] == [first.json()["shipment_id"]]


async def test_concurrent_calls_with_one_key_create_one_shipment(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    responses: list[httpx.Response] = []

    async def call() -> None:
        responses.append(await create_shipment(carrier, shipment_body(order_id), key))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(call)

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 201]
    assert len({r.json()["shipment_id"] for r in responses}) == 1
    assert len(await shipments_of(carrier, order_id)) == 1


async def test_a_different_key_is_a_different_shipment(carrier: httpx.AsyncClient) -> None:
    order_id = new_order_id()

    first = await create_shipment(carrier, shipment_body(order_id), new_key())
    second = await create_shipment(carrier, shipment_body(order_id), new_key())

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["shipment_id"] != second.json()["shipment_id"]
    assert len(await shipments_of(carrier, order_id)) == 2


@pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": ""}, {"Idempotency-Key": "k" * 256}])
async def test_create_without_a_usable_idempotency_key_is_400(
    carrier: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    order_id = new_order_id()

    response = await carrier.post("/shipments", json=shipment_body(order_id), headers=headers)

    assert_problem(response, 400, "missing-idempotency-key")
    assert await shipments_of(carrier, order_id) == []


def _without_recipient(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "recipient"}


@pytest.mark.parametrize(
    ("case", "content"),
    [
        ("not json", b"{not json"),
        ("no recipient", _without_recipient(shipment_body("ord-x"))),
        ("no items", shipment_body("ord-x", items=[])),
        ("zero quantity", shipment_body("ord-x", items=[{"sku": "A", "quantity": 0}])),
        ("three-letter country", shipment_body("ord-x", country="NLD")),
        ("unknown field", shipment_body("ord-x", service_level="express")),
        ("blank order id", shipment_body("  ")),
    ],
)
async def test_malformed_body_is_422_invalid_request(
    carrier: httpx.AsyncClient, case: str, content: bytes | dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": new_key(), "Content-Type": "application/json"}
    if isinstance(content, bytes):
        response = await carrier.post("/shipments", content=content, headers=headers)
    else:
        response = await carrier.post("/shipments", json=content, headers=headers)

    problem = assert_problem(response, 422, "invalid-request")
    assert problem["errors"], case
    assert (await carrier.get("/admin/shipments")).json() == []


@pytest.mark.parametrize("path", ["/shipments", "/admin/faults"])
async def test_a_body_over_256_kib_is_a_413_and_stores_nothing(carrier: httpx.AsyncClient, path: str) -> None:
    headers = {"Idempotency-Key": new_key(), "Content-Type": "application/json"}
    body = shipment_body(new_order_id())
    body["pad"] = "x" * 256 * 1024

    response = await carrier.request("PUT" if path == "/admin/faults" else "POST", path, json=body, headers=headers)

    assert_problem(response, 413)
    assert (await carrier.get("/admin/shipments")).json() == []


async def test_a_shipment_request_that_is_not_json_is_a_415(carrier: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": new_key(), "Content-Type": "text/plain"}

    response = await carrier.post("/shipments", content=b"{}", headers=headers)

    assert_problem(response, 415)
    assert (await carrier.get("/admin/shipments")).json() == []


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ({"country": "KP"}, "embargoed_destination"),
        ({"country": "ir"}, "embargoed_destination"),
        ({"postal_code": "REJECT-42"}, "undeliverable_address"),
    ],
)
async def test_refused_address_is_422_with_a_reason_remembered_for_the_key(
    carrier: httpx.AsyncClient, address: dict[str, str], reason: str
) -> None:
    order_id, key = new_order_id(), new_key()
    body = shipment_body(order_id, **address)

    first = await create_shipment(carrier, body, key)
    again = await create_shipment(carrier, body, key)

    problem = assert_problem(first, 422, "address-rejected")
    assert problem["reason"] == reason
    assert again.status_code == 422
    assert again.json() == problem
    assert await shipments_of(carrier, order_id) == []


async def test_get_unknown_shipment_is_404(carrier: httpx.AsyncClient) -> None:
    assert_problem(await carrier.get("/shipments/shp_nope"), 404, "shipment-not-found")


async def test_cancel_voids_the_shipment_and_is_idempotent(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    created = (await create_shipment(carrier, shipment_body(order_id), key)).json()
    cancel_path = f"/shipments/{created['shipment_id']}/cancel"

    first = await carrier.post(cancel_path)
    second = await carrier.post(cancel_path)

    assert first.status_code == 200
    assert first.json() == {**created, "status": "voided"}
    assert second.status_code == 200
    assert second.json() == first.json()
    assert (await carrier.get(f"/shipments/{created['shipment_id']}")).json()["status"] == "voided"
    replay = await create_shipment(carrier, shipment_body(order_id), key)
    assert replay.status_code == 200
    assert replay.json() == {**created, "status": "voided"}
    [stored] = await shipments_of(carrier, order_id)
    assert stored["status"] == "voided"
    assert stored["voided_at"] is not None


async def test_cancel_as_a_sidecar_forwards_it_chunked_without_a_body_or_content_type_voids(
    carrier: httpx.AsyncClient,
) -> None:
    """daprd forwards fulfillment's bodiless void that way; the body-limit guard refused it 415 once."""
    created = (await create_shipment(carrier, shipment_body(new_order_id()), new_key())).json()

    async def no_chunks() -> AsyncIterator[bytes]:
        none: tuple[bytes, ...] = ()
        for chunk in none:
            yield chunk

    response = await carrier.post(f"/shipments/{created['shipment_id']}/cancel", content=no_chunks())

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-type" not in response.request.headers
    assert (response.status_code, response.json()["status"]) == (200, "voided")


async def test_cancel_unknown_shipment_is_404(carrier: httpx.AsyncClient) -> None:
    assert_problem(await carrier.post("/shipments/shp_nope/cancel"), 404, "shipment-not-found")


async def test_find_by_order_lists_that_orders_shipments_oldest_first(carrier: httpx.AsyncClient) -> None:
    order_id, other_order = new_order_id(), new_order_id()
    first = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()
    await create_shipment(carrier, shipment_body(other_order), new_key())
    second = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()
    await carrier.post(f"/shipments/{first['shipment_id']}/cancel")

    response = await carrier.get("/shipments", params={"order_id": order_id})

    assert response.status_code == 200, response.text
    assert response.json() == [{**first, "status": "voided"}, second]
    for found in response.json():
        assert found == (await carrier.get(f"/shipments/{found['shipment_id']}")).json()


async def test_find_by_unknown_order_is_an_empty_list(carrier: httpx.AsyncClient) -> None:
    await create_shipment(carrier, shipment_body(new_order_id()), new_key())

    response = await carrier.get("/shipments", params={"order_id": new_order_id()})

    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.parametrize("params", [{}, {"order_id": ""}, {"order_id": "   "}])
async def test_find_without_an_order_id_is_422(carrier: httpx.AsyncClient, params: dict[str, str]) -> None:
    problem = assert_problem(await carrier.get("/shipments", params=params), 422, "invalid-request")

    assert problem["errors"]
