"""The sidecar's side of the API: GET /dapr/subscribe and bulk deliveries to POST /events/fulfillment-events, which
only the sidecar may call (it sends the `dapr-api-token` header)."""

import json
from typing import Any

import httpx
import pytest
from order_service.config import Settings
from order_service.handlers import OrderHandlers
from order_service.main import create_app
from order_service_fakes import SIDECAR_HEADERS, SIDECAR_TOKEN, FakeReadiness
from pydantic import ValidationError
from service_runtime.bulk_testing import BulkSidecar, FakeDeadLetters, bulk_delivery

pytestmark = pytest.mark.anyio

EVENTS = "/events/fulfillment-events"
PICKED_UP_AT = "2025-06-01T12:00:00Z"


@pytest.fixture
def sidecar(client: httpx.AsyncClient, dead_letters: FakeDeadLetters) -> BulkSidecar:
    return BulkSidecar(client, EVENTS, "fulfillment-events", SIDECAR_HEADERS, dead_letters)


def cloud_event(event_type: str, data: Any, *, event_id: str = "ce-1") -> dict[str, Any]:
    """A structured CloudEvent as Dapr delivers it, with the attributes Dapr adds."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "fulfillment-service",
        "type": event_type,
        "datacontenttype": "application/json",
        "data": data,
        "topic": "fulfillment-events",
        "pubsubname": "order-pubsub",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }


def started(order_id: str) -> dict[str, Any]:
    return cloud_event("fulfillment.started.v1", {"order_id": order_id, "picked_up_at": PICKED_UP_AT})


def batch(*events: object) -> dict[str, Any]:
    return bulk_delivery("fulfillment-events", *events)


async def read(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await client.get(f"/orders/{order_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_the_only_subscription_is_to_fulfillment_events_with_a_default_route_and_a_dead_letter_topic(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/dapr/subscribe", headers=SIDECAR_HEADERS)

    assert response.status_code == 200
    [subscription] = response.json()
    assert subscription["pubsubname"] == "order-pubsub"
    assert subscription["topic"] == "fulfillment-events"
    assert subscription["deadLetterTopic"] == "fulfillment-events-dlq"
    assert subscription["routes"] == {"rules": [], "default": EVENTS}  # one path: a bulk batch stays whole
    assert subscription["bulkSubscribe"] == {"enabled": True, "maxMessagesCount": 100, "maxAwaitDurationMs": 20}


async def test_the_subscription_is_on_the_pubsub_and_topics_the_app_was_configured_with(
    handlers: OrderHandlers,
) -> None:
    settings = Settings(
        APP_API_TOKEN=SIDECAR_TOKEN,
        pubsub="other-pubsub",
        topic="published-topic",
        subscription_topic="other-topic",
        dead_letter_topic="other-topic-dlq",
    )
    app = create_app(settings)
    app.state.order_handlers = handlers
    app.state.readiness = FakeReadiness()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/dapr/subscribe", headers=SIDECAR_HEADERS)

    [subscription] = response.json()
    assert (subscription["pubsubname"], subscription["topic"]) == ("other-pubsub", "other-topic")
    assert subscription["deadLetterTopic"] == "other-topic-dlq"


async def test_fulfillment_started_moves_the_order_to_processing(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    assert await sidecar.deliver(started(order["id"])) == "SUCCESS"

    folded = await read(client, order["id"])
    assert folded["status"] == "processing"
    assert folded["fulfillment"]["picked_up_at"] == PICKED_UP_AT
    assert [entry["status"] for entry in folded["history"]] == ["pending", "processing"]


async def test_the_same_event_delivered_again_succeeds_and_changes_nothing(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    assert await sidecar.deliver(started(order["id"])) == "SUCCESS"
    once = await read(client, order["id"])

    assert await sidecar.deliver(started(order["id"])) == "SUCCESS"

    assert await read(client, order["id"]) == once


async def test_an_event_of_a_type_outside_the_contract_is_dead_lettered_and_changes_nothing(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    event = cloud_event("fulfillment.teleported.v9", {"order_id": order["id"], "at": PICKED_UP_AT})

    assert await sidecar.deliver(event) == "DROP"

    assert await read(client, order["id"]) == order


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"order_id": "ORDER"}, id="missing-member"),
        pytest.param({"order_id": "ORDER", "picked_up_at": "yesterday"}, id="not-a-time"),
        pytest.param({"order_id": "ORDER", "picked_up_at": "2025-06-01T12:00:00"}, id="no-offset"),
        pytest.param({"order_id": "", "picked_up_at": PICKED_UP_AT}, id="empty-order-id"),
        pytest.param("not an object", id="not-an-object"),
        pytest.param(None, id="no-data"),
    ],
)
async def test_unreadable_data_of_a_known_type_is_dropped(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any], data: Any
) -> None:
    if isinstance(data, dict) and data.get("order_id") == "ORDER":
        data = {**data, "order_id": order["id"]}

    assert await sidecar.deliver(cloud_event("fulfillment.started.v1", data)) == "DROP"

    assert await read(client, order["id"]) == order


async def test_an_event_for_an_unknown_order_is_dropped(sidecar: BulkSidecar, client: httpx.AsyncClient) -> None:
    assert await sidecar.deliver(started("no-such-order")) == "DROP"

    assert (await client.get("/orders/no-such-order")).status_code == 404


async def test_an_order_event_on_the_fulfillment_topic_is_dead_lettered_and_changes_nothing(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    """An event of the contract, valid, but not a fulfillment event: it was published to the wrong topic."""
    created = {key: order[key] for key in ("customer", "items", "currency", "total", "created_at")}
    event = cloud_event(
        "order.created.v1", {"order_id": order["id"], **created}, event_id=f"order.created.v1:{order['id']}"
    )

    assert await sidecar.deliver(event) == "DROP"

    assert await read(client, order["id"]) == order


@pytest.mark.parametrize(
    "envelope",
    [
        {"specversion": "1.0", "source": "x", "type": "fulfillment.started.v1", "data": {}},  # no id
        {"specversion": "1.0", "id": "1", "source": "x", "type": "t", "time": "2026-11-24T01:00:00"},  # no offset
        ["not", "an", "object"],
        "a string",
    ],
    ids=["missing id", "time without offset", "not an object", "a string"],
)
async def test_an_entry_that_is_no_cloudevent_is_dropped_not_retried(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any], envelope: Any
) -> None:
    assert await sidecar.deliver_batch(envelope, started(order["id"])) == ["DROP", "SUCCESS"]

    assert (await read(client, order["id"]))["status"] == "processing"


async def test_a_body_that_is_no_bulk_delivery_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(EVENTS, content=json.dumps(started("x")), headers=SIDECAR_HEADERS)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_fulfillment_attempt_failed_shows_the_error_and_the_next_attempt(
    sidecar: BulkSidecar, client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    data = {
        "order_id": order["id"],
        "attempt": 1,
        "error": "carrier answered 503",
        "failed_at": "2025-06-01T12:00:05Z",
        "next_attempt_at": "2025-06-01T12:00:35Z",
    }
    event = cloud_event(
        "fulfillment.attempt_failed.v1", data, event_id=f"fulfillment.attempt_failed.v1:{order['id']}:1"
    )

    assert await sidecar.deliver(event) == "SUCCESS"

    folded = await read(client, order["id"])
    assert folded["status"] == "processing"
    assert folded["fulfillment"]["attempts"] == 1
    assert folded["fulfillment"]["last_error"] == "carrier answered 503"
    assert folded["fulfillment"]["next_attempt_at"] == "2025-06-01T12:00:35Z"
    assert folded["fulfillment"]["voided_at"] is None


# Only the sidecar may call the event endpoints.

WRONG_TOKENS = [
    pytest.param({}, id="no-header"),
    pytest.param({"dapr-api-token": ""}, id="empty"),
    pytest.param({"dapr-api-token": "not-the-token"}, id="wrong"),
    pytest.param({"dapr-api-token": SIDECAR_TOKEN + "x"}, id="longer"),
    pytest.param({"dapr-api-token": "tökén".encode()}, id="non-ascii"),
    pytest.param({"Authorization": f"Bearer {SIDECAR_TOKEN}"}, id="other-header"),
]


def assert_unauthorized_problem(response: httpx.Response, path: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "APIKey"
    problem = response.json()
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert "dapr-api-token" in problem["detail"]
    assert SIDECAR_TOKEN not in response.text
    assert problem["instance"] == path


@pytest.mark.parametrize("headers", WRONG_TOKENS)
async def test_a_delivery_without_the_sidecars_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, order: dict[str, Any], headers: dict[str, Any]
) -> None:
    response = await client.post(
        EVENTS, content=json.dumps(batch(started(order["id"]))), headers={"Content-Type": "application/json", **headers}
    )

    assert_unauthorized_problem(response, EVENTS)
    assert await read(client, order["id"]) == order


@pytest.mark.parametrize("headers", WRONG_TOKENS)
async def test_the_subscriptions_are_refused_without_the_sidecars_token(
    client: httpx.AsyncClient, headers: dict[str, Any]
) -> None:
    response = await client.get("/dapr/subscribe", headers=headers)

    assert_unauthorized_problem(response, "/dapr/subscribe")


async def test_the_token_is_checked_before_the_body_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(EVENTS, content=b"not even json", headers={"Content-Type": "application/json"})

    assert_unauthorized_problem(response, EVENTS)


async def test_the_public_api_needs_no_token(client: httpx.AsyncClient, order: dict[str, Any]) -> None:
    assert (await client.get(f"/orders/{order['id']}")).status_code == 200
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.post(f"/orders/{order['id']}/cancel")).status_code == 200


def test_the_app_refuses_to_start_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_API_TOKEN", raising=False)
    monkeypatch.setenv("ORDER_SERVICE_APP_API_TOKEN", "the-prefixed-name-is-not-read")

    with pytest.raises(ValidationError, match="APP_API_TOKEN"):
        Settings()


def test_the_token_is_read_from_app_api_token_as_daprd_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "from-the-environment")

    settings = Settings()

    assert settings.app_api_token.get_secret_value() == "from-the-environment"
    assert "from-the-environment" not in repr(settings)


def test_an_empty_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_API_TOKEN", "")

    with pytest.raises(ValidationError, match="APP_API_TOKEN"):
        Settings()


async def test_poison_is_put_on_the_dead_letter_topic_as_delivered_with_its_key_and_answered_success(
    client: httpx.AsyncClient, dead_letters: FakeDeadLetters
) -> None:
    """Never DROP in a batch: Dapr 1.18.2 finds a dropped entry at the wrong index (service_runtime/dead_letters.py)."""
    poison = cloud_event("fulfillment.teleported.v9", {"order_id": "o-1"})
    delivery = batch(poison)
    delivery["entries"][0]["metadata"] = {"__key": "o-1", "__partition": "3", "__offset": "17"}

    response = await client.post(EVENTS, content=json.dumps(delivery), headers=SIDECAR_HEADERS)

    assert response.json() == {"statuses": [{"entryId": "0", "status": "SUCCESS"}]}
    [letter] = dead_letters.letters
    assert letter.event == poison
    assert letter.metadata["__key"] == "o-1"


async def test_poison_the_broker_will_not_take_is_delivered_again(
    client: httpx.AsyncClient, dead_letters: FakeDeadLetters, order: dict[str, Any]
) -> None:
    dead_letters.failing = ConnectionError("broker down")
    poison = cloud_event("fulfillment.teleported.v9", {"order_id": order["id"]})

    response = await client.post(
        EVENTS, content=json.dumps(batch(poison, started(order["id"]))), headers=SIDECAR_HEADERS
    )

    assert [status["status"] for status in response.json()["statuses"]] == ["RETRY", "SUCCESS"]
    assert dead_letters.letters == []
