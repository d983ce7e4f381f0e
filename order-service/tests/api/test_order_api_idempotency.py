"""POST /orders with an Idempotency-Key: replays, mismatches, malformed keys and requests still in flight."""

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from order_service.adapters.idempotency import IdempotencyRecord
from order_service.handlers import OrderHandlers
from order_service_fakes import FakeEventPublisher, FakeIdempotencyKeys

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


def created_events(publisher: FakeEventPublisher) -> list[str]:
    return [event.order_id for event in publisher.published if event.event_type == "order.created.v1"]


async def test_the_same_key_and_body_replays_the_first_order(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    first = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})
    again = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"] == f"/orders/{first.json()['id']}"
    assert created_events(publisher) == [first.json()["id"]]


async def test_key_order_and_whitespace_do_not_make_another_body(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    def reversed_keys(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reversed_keys(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(item) for item in value]
        return value

    compact = json.dumps(order_body, separators=(",", ":"))
    spread = json.dumps(reversed_keys(order_body), indent=4)
    assert compact != spread

    first = await client.post(
        "/orders", content=compact, headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"}
    )
    again = await client.post(
        "/orders", content=spread, headers={"Idempotency-Key": "key-1", "Content-Type": "application/json"}
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len(created_events(publisher)) == 1


async def test_the_same_key_with_another_body_is_a_422_problem(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    first = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})
    order_body["items"][0]["quantity"] = 3

    response = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})

    assert first.status_code == 201
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Unprocessable Content", 422)
    assert "Idempotency-Key" in problem["detail"]
    assert "idempotent-replayed" not in response.headers
    assert created_events(publisher) == [first.json()["id"]]


async def test_a_key_of_255_printable_characters_is_accepted(
    client: httpx.AsyncClient, order_body: dict[str, Any]
) -> None:
    key = "~ !" + "k" * 252

    first = await client.post("/orders", json=order_body, headers={"Idempotency-Key": key})
    again = await client.post("/orders", json=order_body, headers={"Idempotency-Key": key})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    "key",
    [pytest.param("k" * 256, id="256-chars"), pytest.param("key\twith-tab", id="tab"), pytest.param("k\x7f", id="del")],
)
async def test_a_malformed_key_is_a_400_problem_and_creates_nothing(
    client: httpx.AsyncClient,
    publisher: FakeEventPublisher,
    idempotency_keys: FakeIdempotencyKeys,
    order_body: dict[str, Any],
    key: str,
) -> None:
    response = await client.post("/orders", json=order_body, headers={"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Bad Request", 400)
    assert "Idempotency-Key" in problem["detail"]
    assert publisher.published == []
    assert idempotency_keys.records == {}


async def test_a_request_refused_by_validation_claims_nothing_under_its_key(
    client: httpx.AsyncClient,
    publisher: FakeEventPublisher,
    idempotency_keys: FakeIdempotencyKeys,
    order_body: dict[str, Any],
) -> None:
    invalid = json.loads(json.dumps(order_body))
    invalid["items"][0]["quantity"] = 0

    refused = await client.post("/orders", json=invalid, headers={"Idempotency-Key": "key-1"})

    assert refused.status_code == 422
    assert [error["pointer"] for error in refused.json()["errors"]] == ["/items/0/quantity"]
    assert idempotency_keys.records == {}

    created = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})

    assert created.status_code == 201
    assert "idempotent-replayed" not in created.headers
    assert created_events(publisher) == [created.json()["id"]]


async def test_a_request_whose_first_is_still_in_flight_is_a_409_problem_with_retry_after(
    client: httpx.AsyncClient,
    handlers: OrderHandlers,
    publisher: FakeEventPublisher,
    idempotency_keys: FakeIdempotencyKeys,
    order_body: dict[str, Any],
) -> None:
    # Learn the fingerprint the app gives this body from a request under another key.
    assert (await client.post("/orders", json=order_body, headers={"Idempotency-Key": "probe"})).status_code == 201
    fingerprint = idempotency_keys.records["probe"].request_fingerprint
    # A first request with "key-1" has claimed it just now and not stored its order yet.
    idempotency_keys.records["key-1"] = IdempotencyRecord(
        request_fingerprint=fingerprint, order_id="being-created", claimed_at=handlers.clock()
    )
    handlers.in_flight_wait = timedelta(0)

    response = await client.post("/orders", json=order_body, headers={"Idempotency-Key": "key-1"})

    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) >= 1
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Conflict", 409)
    assert len(created_events(publisher)) == 1  # the probe's order only
    assert (await client.get("/orders/being-created")).status_code == 404
