"""POST /orders, GET /orders/{id} and POST /orders/{id}/cancel over HTTP, on fakes."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from order_contracts.events import FulfillmentShipped, OrderCancelled, OrderCreated
from order_service.handlers import OrderHandlers
from order_service_fakes import FakeEventPublisher

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
DEFAULT_REASON = "cancelled by the customer"
NOW = datetime(2025, 6, 1, 12, 30, 45, 123456, tzinfo=UTC)
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)")


def is_rfc3339_utc(value: str) -> bool:
    return bool(RFC3339_UTC.fullmatch(value)) and datetime.fromisoformat(value).utcoffset() == timedelta(0)


# --- POST /orders ---------------------------------------------------------------------------------------------------


async def test_placing_an_order_answers_201_at_its_location_and_publishes_order_created(
    client: httpx.AsyncClient, handlers: OrderHandlers, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    handlers.clock = lambda: NOW

    response = await client.post("/orders", json=order_body)

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert response.headers["location"] == f"/orders/{body['id']}"
    assert "idempotent-replayed" not in response.headers
    assert body["status"] == "pending"
    assert body["total"] == "25.00"
    assert body["currency"] == "GBP"
    assert body["items"] == [{"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"}]
    assert body["customer"]["email"] == "jane.doe@example.com"
    assert body["created_at"] == "2025-06-01T12:30:45.123456Z"
    assert body["updated_at"] == body["created_at"]
    assert body["history"] == [{"status": "pending", "at": "2025-06-01T12:30:45.123456Z"}]
    assert body["fulfillment"] is None
    assert "applied_event_ids" not in body
    [event] = publisher.published
    assert isinstance(event, OrderCreated)
    assert event.event_type == "order.created.v1"
    assert (event.order_id, event.total, event.created_at) == (body["id"], "25.00", NOW)


async def test_timestamps_are_rfc3339_in_utc(order: dict[str, Any]) -> None:
    assert is_rfc3339_utc(order["created_at"]), order["created_at"]
    assert is_rfc3339_utc(order["updated_at"]), order["updated_at"]
    assert all(is_rfc3339_utc(entry["at"]) for entry in order["history"])


@pytest.mark.parametrize(
    ("currency", "unit_price", "expected"),
    [
        ("GBP", 12.5, {"unit_price": "12.50", "total": "25.00"}),
        ("GBP", "12", {"unit_price": "12.00", "total": "24.00"}),
        ("JPY", "1200", {"unit_price": "1200", "total": "2400"}),
        ("KWD", "1.125", {"unit_price": "1.125", "total": "2.250"}),
    ],
)
async def test_prices_are_written_with_the_currency_minor_units(
    client: httpx.AsyncClient, order_body: dict[str, Any], currency: str, unit_price: Any, expected: dict[str, str]
) -> None:
    order_body["currency"] = currency
    order_body["items"][0]["unit_price"] = unit_price

    response = await client.post("/orders", json=order_body)

    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["unit_price"] == expected["unit_price"]
    assert response.json()["total"] == expected["total"]


async def test_an_invalid_order_is_refused_with_every_violation_and_nothing_is_published(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    order_body["items"][0]["quantity"] = 0
    order_body["currency"] = "XXX"

    response = await client.post("/orders", json=order_body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert {error["pointer"] for error in response.json()["errors"]} == {"/items/0/quantity", "/currency"}
    assert publisher.published == []


# --- GET /orders/{id} -----------------------------------------------------------------------------------------------


async def test_reading_an_order_answers_what_creating_it_answered(
    client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    response = await client.get(f"/orders/{order['id']}")

    assert response.status_code == 200
    assert response.json() == order


OUTSIDE_THE_ID_FORMAT = ["/orders/outbox-index%7C0", "/orders/a%7C%7Cb", "/orders/a%7Cb/cancel", "/orders/a.b"]


@pytest.mark.parametrize("path", OUTSIDE_THE_ID_FORMAT)
async def test_a_path_id_outside_the_id_format_is_a_422_naming_the_parameter(
    client: httpx.AsyncClient, path: str
) -> None:
    """Internal state keys (all with a `|`) and keys Dapr refuses (`||`) were read as orders: a 500."""
    method = "POST" if path.endswith("/cancel") else "GET"

    response = await client.request(method, path)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [error["parameter"] for error in response.json()["errors"]] == ["order_id"]


async def test_reading_an_unknown_order_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders/no-such-order")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "about:blank"
    assert problem["title"] == "Not Found"
    assert problem["status"] == 404
    assert "no-such-order" in problem["detail"]


# --- POST /orders/{id}/cancel ---------------------------------------------------------------------------------------


def cancellations(publisher: FakeEventPublisher) -> list[OrderCancelled]:
    return [event for event in publisher.published if isinstance(event, OrderCancelled)]


async def test_cancelling_a_pending_order_answers_it_cancelled_with_the_default_reason(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order: dict[str, Any]
) -> None:
    response = await client.post(f"/orders/{order['id']}/cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == order["id"]
    assert body["status"] == "cancelled"
    assert [entry["status"] for entry in body["history"]] == ["pending", "cancelled"]
    [event] = cancellations(publisher)
    assert (event.order_id, event.reason) == (order["id"], DEFAULT_REASON)
    assert "cancellation" in body, "the client is not told why and when its order was cancelled"
    assert body["cancellation"]["reason"] == DEFAULT_REASON
    assert is_rfc3339_utc(body["cancellation"]["cancelled_at"])


async def test_a_reason_in_the_body_is_the_cancellation_reason(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order: dict[str, Any]
) -> None:
    response = await client.post(f"/orders/{order['id']}/cancel", json={"reason": "x"})

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert [event.reason for event in cancellations(publisher)] == ["x"]
    assert "cancellation" in response.json(), "the client is not told why and when its order was cancelled"
    assert response.json()["cancellation"]["reason"] == "x"
    assert (await client.get(f"/orders/{order['id']}")).json()["cancellation"]["reason"] == "x"


async def test_cancelling_again_answers_200_with_the_first_cancellation(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order: dict[str, Any]
) -> None:
    first = await client.post(f"/orders/{order['id']}/cancel", json={"reason": "first"})
    again = await client.post(f"/orders/{order['id']}/cancel", json={"reason": "second"})

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert [event.reason for event in cancellations(publisher)] == ["first"]  # a repeat owes nothing new


async def test_a_shipped_order_cannot_be_cancelled(
    client: httpx.AsyncClient, handlers: OrderHandlers, publisher: FakeEventPublisher, order: dict[str, Any]
) -> None:
    shipped = FulfillmentShipped(
        order_id=order["id"],
        carrier="acme",
        tracking_number="TRK-1",
        shipment_id="shp-1",
        shipped_at=datetime.now(UTC),
        attempts=1,
    )
    assert await handlers.fold_event(shipped, event_id="shipped-1")

    response = await client.post(f"/orders/{order['id']}/cancel")

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Conflict", 409)
    assert problem["order_status"] == "shipped"
    assert problem["detail"]
    assert cancellations(publisher) == []
    assert (await client.get(f"/orders/{order['id']}")).json()["status"] == "shipped"


async def test_cancelling_an_unknown_order_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders/no-such-order/cancel")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 404


@pytest.mark.parametrize(
    ("body", "pointer"),
    [({"reason": "x", "refund": True}, "/refund"), ({"reason": ""}, "/reason"), ({"reason": "r" * 201}, "/reason")],
)
async def test_an_invalid_cancel_body_is_a_422_problem_and_cancels_nothing(
    client: httpx.AsyncClient, order: dict[str, Any], body: dict[str, Any], pointer: str
) -> None:
    response = await client.post(f"/orders/{order['id']}/cancel", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    assert (await client.get(f"/orders/{order['id']}")).json()["status"] == "pending"
