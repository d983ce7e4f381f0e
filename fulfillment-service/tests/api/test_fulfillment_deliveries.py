"""The app over HTTP, in process, its use cases on fakes: the sidecar's subscription and deliveries (only the sidecar,
with the app API token, may call them), and the carrier's signed delivery reports.

httpx's ASGITransport never sends ``lifespan`` scopes, so the lifespan (DaprClient, worker) never runs and the app
keeps the handlers set here.
"""

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fulfillment_fakes import (
    SIDECAR_HEADERS,
    SIDECAR_TOKEN,
    T0,
    WEBHOOK_SECRET,
    FakeClock,
    FakeEventPublisher,
    FakeFulfillmentStore,
    RecordingWaker,
    order_created,
)
from fulfillment_service.api.webhooks import signature_of
from fulfillment_service.config import Settings
from fulfillment_service.domain import FulfillmentRecord, FulfillmentStatus, Shipment
from fulfillment_service.handlers import FulfillmentHandlers
from fulfillment_service.main import create_app
from order_contracts.events import FulfillmentDelivered, FulfillmentStarted

pytestmark = pytest.mark.anyio

CLOUDEVENTS_HEADERS = {"Content-Type": "application/cloudevents+json"}
EVENT_PATHS = ["/events/order-created", "/events/order-cancelled", "/events/other"]
WEBHOOK = "/webhooks/carrier"
SHIPMENT = Shipment(shipment_id="shp-order-1", carrier="Fake Parcel", tracking_number="T-order-1")
LEASE = timedelta(seconds=150)
DELIVERED_AT = "2026-11-25T10:30:00Z"


@pytest.fixture
def app(store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker) -> FastAPI:
    app = create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN, CARRIER_WEBHOOK_SECRET=WEBHOOK_SECRET))
    app.state.fulfillment_handlers = FulfillmentHandlers(
        store=store,
        publisher=publisher,
        wake_worker=wakes,
        worker_id="worker-1",
        lease_for=LEASE,
        clock=FakeClock(),
    )
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def cloud_event(event_type: str, data: Any) -> dict[str, Any]:
    """A structured CloudEvent as Dapr delivers it, with the attributes Dapr adds."""
    return {
        "specversion": "1.0",
        "id": f"{event_type}:ce-1",
        "source": "order-service",
        "type": event_type,
        "datacontenttype": "application/json",
        "data": data,
        "topic": "order-events",
        "pubsubname": "order-pubsub",
    }


def created(order_id: str = "order-1") -> dict[str, Any]:
    return cloud_event("order.created.v1", order_created(order_id).model_dump(mode="json"))


def cancelled(order_id: str = "order-1") -> dict[str, Any]:
    return cloud_event(
        "order.cancelled.v1", {"order_id": order_id, "reason": "changed my mind", "cancelled_at": T0.isoformat()}
    )


async def deliver(client: httpx.AsyncClient, path: str, body: object) -> str:
    """Deliver as the sidecar does, and return the status the app answers it with."""
    response = await client.post(path, content=json.dumps(body), headers={**CLOUDEVENTS_HEADERS, **SIDECAR_HEADERS})
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def store_shipped(store: FakeFulfillmentStore, order_id: str = "order-1") -> None:
    """An order the worker has shipped (its shipped event published)."""
    record = FulfillmentRecord.pick_up(order_created(order_id), at=T0, worker="worker-1", lease_for=LEASE)
    record.record_shipment(SHIPMENT, at=T0)
    record.settle(list(record.owed_events))
    await store.save(record, None, now=T0)


async def store_pending(store: FakeFulfillmentStore, order_id: str = "order-1") -> None:
    record = FulfillmentRecord.pick_up(order_created(order_id), at=T0, worker="worker-1", lease_for=LEASE)
    await store.save(record, None, now=T0)


def report(order_id: str = "order-1", shipment_id: str = SHIPMENT.shipment_id) -> bytes:
    return json.dumps(
        {"shipment_id": shipment_id, "order_id": order_id, "status": "delivered", "delivered_at": DELIVERED_AT}
    ).encode()


async def send_report(client: httpx.AsyncClient, body: bytes, signature: str | None = "valid") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature == "valid":
        headers["X-Carrier-Signature"] = signature_of(body, WEBHOOK_SECRET.encode())
    elif signature is not None:
        headers["X-Carrier-Signature"] = signature
    return await client.post(WEBHOOK, content=body, headers=headers)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


@pytest.mark.parametrize(("method", "path"), [("GET", "/dapr/subscribe"), *(("POST", path) for path in EVENT_PATHS)])
async def test_only_the_sidecar_may_call_the_subscription_and_event_endpoints(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher, method: str, path: str
) -> None:
    for token in (None, "wrong-token", ""):
        headers = dict(CLOUDEVENTS_HEADERS) if token is None else {**CLOUDEVENTS_HEADERS, "dapr-api-token": token}

        response = await client.request(method, path, content=json.dumps(created()), headers=headers)

        assert_problem(response, 401)
    assert not store.has("order-1")
    assert publisher.published == []


async def test_the_only_subscription_is_to_order_events_routed_by_type_with_a_dead_letter_topic(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/dapr/subscribe", headers=SIDECAR_HEADERS)

    assert response.status_code == 200
    [subscription] = response.json()
    assert subscription["pubsubname"] == "order-pubsub"
    assert subscription["topic"] == "order-events"
    assert subscription["deadLetterTopic"] == "order-events-dlq"
    assert subscription["routes"] == {
        "rules": [
            {"match": "event.type == 'order.created.v1'", "path": "/events/order-created"},
            {"match": "event.type == 'order.cancelled.v1'", "path": "/events/order-cancelled"},
        ],
        "default": "/events/other",
    }


async def test_the_subscription_is_on_the_topics_the_app_was_configured_with() -> None:
    settings = Settings(
        APP_API_TOKEN=SIDECAR_TOKEN,
        CARRIER_WEBHOOK_SECRET=WEBHOOK_SECRET,
        topic="published-topic",
        subscription_topic="other-topic",
        dead_letter_topic="other-topic-dlq",
    )
    app = create_app(settings)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/dapr/subscribe", headers=SIDECAR_HEADERS)

    [subscription] = response.json()
    assert (subscription["topic"], subscription["deadLetterTopic"]) == ("other-topic", "other-topic-dlq")


async def test_a_new_order_is_picked_up_and_acknowledged_without_waiting_for_the_carrier(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    assert await deliver(client, "/events/order-created", created()) == "SUCCESS"

    assert store.record("order-1").status is FulfillmentStatus.PENDING
    assert "order-1" in store.index
    assert wakes.order_ids == ["order-1"]
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]


async def test_a_redelivered_order_is_acknowledged_and_picked_up_once(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, wakes: RecordingWaker
) -> None:
    assert await deliver(client, "/events/order-created", created()) == "SUCCESS"
    assert await deliver(client, "/events/order-created", created()) == "SUCCESS"

    assert len(store.writes["order-1"]) == 1
    assert wakes.order_ids == ["order-1"]


async def test_a_cancellation_is_routed_to_the_order_it_cancels(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    assert await deliver(client, "/events/order-created", created()) == "SUCCESS"

    assert await deliver(client, "/events/order-cancelled", cancelled()) == "SUCCESS"

    assert store.record("order-1").status is FulfillmentStatus.CANCELLED


async def test_a_cancellation_of_an_order_never_picked_up_is_acknowledged(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    assert await deliver(client, "/events/order-cancelled", cancelled("order-unknown")) == "SUCCESS"

    assert not store.has("order-unknown")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/events/order-created", cloud_event("order.created.v1", {"order_id": "order-1"})),
        ("/events/order-created", ["not", "a", "cloudevent"]),
        ("/events/order-created", cloud_event("order.cancelled.v1", {"order_id": "order-1"})),
        ("/events/order-cancelled", cloud_event("order.cancelled.v1", {"order_id": "order-1"})),
        ("/events/order-cancelled", created()),
        ("/events/other", cloud_event("bogus.v1", {"order_id": "order-1"})),
        ("/events/other", cloud_event("com.dapr.event.sent", "not json at all")),
        ("/events/other", {"no": "envelope"}),
    ],
    ids=[
        "schema-invalid order",
        "not a cloudevent",
        "invalid event on the created route",
        "schema-invalid cancellation",
        "an order on the cancelled route",
        "type outside the contract",
        "raw payload",
        "no envelope",
    ],
)
async def test_poison_and_misrouted_events_are_dead_lettered(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher, path: str, body: object
) -> None:
    assert await deliver(client, path, body) == "DROP"

    assert not store.has("order-1")
    assert publisher.published == []


@pytest.mark.parametrize(
    "event",
    [
        cloud_event("fulfillment.started.v1", {"order_id": "order-1", "picked_up_at": T0.isoformat()}),
        cloud_event(
            "fulfillment.delivered.v1",
            {"order_id": "order-1", "shipment_id": "shp-1", "delivered_at": T0.isoformat()},
        ),
    ],
    ids=["fulfillment.started.v1", "fulfillment.delivered.v1"],
)
async def test_contract_events_this_service_does_not_handle_are_acknowledged(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, event: dict[str, Any]
) -> None:
    assert await deliver(client, "/events/other", event) == "SUCCESS"

    assert not store.has("order-1")


async def test_a_delivery_report_without_a_signature_is_refused(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    await store_shipped(store)

    assert_problem(await send_report(client, report(), signature=None), 401)

    assert store.record("order-1").status is FulfillmentStatus.SHIPPED


@pytest.mark.parametrize(
    "signature",
    [
        "sha256=" + "0" * 64,
        signature_of(report(), b"another-secret"),
        signature_of(report(), WEBHOOK_SECRET.encode()).removeprefix("sha256="),
        signature_of(report(shipment_id="shp-other"), WEBHOOK_SECRET.encode()),
    ],
    ids=["garbage", "another secret", "no sha256= prefix", "signature of another body"],
)
async def test_a_delivery_report_with_a_bad_signature_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, wakes: RecordingWaker, signature: str
) -> None:
    await store_shipped(store)
    before = store.record("order-1")

    assert_problem(await send_report(client, report(), signature=signature), 401)

    assert store.record("order-1") == before
    assert wakes.order_ids == []


async def test_a_signed_delivery_report_delivers_the_order_and_publishes_its_delivered_event(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher
) -> None:
    await store_shipped(store)

    response = await send_report(client, report())

    assert response.status_code == 204, response.text
    assert response.content == b""
    record = store.record("order-1")
    assert record.status is FulfillmentStatus.DELIVERED
    assert record.owed_events == []
    [delivered] = publisher.of_type(FulfillmentDelivered.event_type)
    assert isinstance(delivered, FulfillmentDelivered)
    assert delivered.shipment_id == SHIPMENT.shipment_id
    assert delivered.delivered_at.isoformat() == "2026-11-25T10:30:00+00:00"


async def test_the_same_delivery_report_twice_is_acknowledged_and_delivers_once(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher
) -> None:
    await store_shipped(store)

    first = await send_report(client, report())
    again = await send_report(client, report())

    assert (first.status_code, again.status_code) == (204, 204)
    assert len(publisher.of_type(FulfillmentDelivered.event_type)) == 1
    assert store.record("order-1").owed_events == []


async def test_a_delivery_report_before_the_shipment_is_recorded_is_to_be_sent_again_later(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    await store_pending(store)

    assert_problem(await send_report(client, report()), 409)

    record = store.record("order-1")
    assert record.status is FulfillmentStatus.PENDING
    assert record.owed_events == []


async def test_a_delivery_report_for_an_unknown_order_is_not_found(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    assert_problem(await send_report(client, report(order_id="order-unknown")), 404)

    assert not store.has("order-unknown")


async def test_a_signed_body_that_is_not_a_delivery_report_is_unprocessable(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    await store_shipped(store)
    body = json.dumps({"order_id": "order-1", "status": "lost"}).encode()

    assert_problem(await send_report(client, body), 422)

    assert store.record("order-1").status is FulfillmentStatus.SHIPPED


async def test_fulfillments_own_record_of_an_order_can_be_read(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    await store_shipped(store)

    response = await client.get("/fulfillments/order-1")

    assert response.status_code == 200, response.text
    view = response.json()
    assert view["status"] == "shipped"
    assert view["shipment"] == SHIPMENT.model_dump()
    assert view["attempts"] == 1
    assert view["events_to_publish"] == []


async def test_reading_the_record_of_an_order_never_picked_up_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/fulfillments/order-unknown"), 404)
