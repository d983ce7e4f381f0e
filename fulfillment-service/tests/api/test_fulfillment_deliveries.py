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
from service_runtime.bulk_testing import BulkSidecar, FakeDeadLetters, bulk_delivery
from service_runtime.serving import thread_pool_calls

pytestmark = pytest.mark.anyio

JSON_HEADERS = {"Content-Type": "application/json"}
EVENTS = "/events/order-events"
WEBHOOK = "/webhooks/carrier"
SHIPMENT = Shipment(shipment_id="shp-order-1", carrier="Fake Parcel", tracking_number="T-order-1")
LEASE = timedelta(seconds=150)
DELIVERED_AT = "2026-11-25T10:30:00Z"
SIGNED_NOW = int(T0.timestamp())
"""The app's clock (FakeClock) stands at T0: a report signed then is fresh."""


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def app(
    store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker, dead_letters: FakeDeadLetters
) -> FastAPI:
    app = create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN, CARRIER_WEBHOOK_SECRET=WEBHOOK_SECRET))
    app.state.dead_letters = dead_letters
    app.state.fulfillment_handlers = FulfillmentHandlers(
        store=store,
        publisher=publisher,
        wake_worker=wakes,
        worker_id="worker-1",
        pickup_lease=lambda: LEASE,
        clock=FakeClock(),
    )
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
def sidecar(client: httpx.AsyncClient, dead_letters: FakeDeadLetters) -> BulkSidecar:
    return BulkSidecar(client, EVENTS, "order-events", SIDECAR_HEADERS, dead_letters)


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


def batch(*events: object) -> dict[str, Any]:
    return bulk_delivery("order-events", *events)


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
        headers["X-Carrier-Signature"] = signature_of(body, WEBHOOK_SECRET.encode(), SIGNED_NOW)
    elif signature is not None:
        headers["X-Carrier-Signature"] = signature
    return await client.post(WEBHOOK, content=body, headers=headers)


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


@pytest.mark.parametrize(("method", "path"), [("GET", "/dapr/subscribe"), ("POST", EVENTS)])
async def test_only_the_sidecar_may_call_the_subscription_and_event_endpoints(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher, method: str, path: str
) -> None:
    for token in (None, "wrong-token", ""):
        headers = dict(JSON_HEADERS) if token is None else {**JSON_HEADERS, "dapr-api-token": token}

        response = await client.request(method, path, content=json.dumps(batch(created())), headers=headers)

        assert_problem(response, 401)
    assert not store.has("order-1")
    assert publisher.published == []


async def test_the_only_subscription_is_a_bulk_one_to_order_events_on_one_path_with_a_dead_letter_topic(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/dapr/subscribe", headers=SIDECAR_HEADERS)

    assert response.status_code == 200
    [subscription] = response.json()
    assert subscription["pubsubname"] == "order-pubsub"
    assert subscription["topic"] == "order-events"
    assert subscription["deadLetterTopic"] == "order-events-dlq"
    # One path: with routing rules the runtime would split a batch by type and could cancel before it picks up.
    assert subscription["routes"] == {"rules": [], "default": EVENTS}
    assert subscription["bulkSubscribe"] == {"enabled": True, "maxMessagesCount": 100, "maxAwaitDurationMs": 20}


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
    sidecar: BulkSidecar,
    client: httpx.AsyncClient,
    store: FakeFulfillmentStore,
    publisher: FakeEventPublisher,
    wakes: RecordingWaker,
) -> None:
    assert await sidecar.deliver(created()) == "SUCCESS"

    assert store.record("order-1").status is FulfillmentStatus.PENDING
    assert "order-1" in store.index
    assert wakes.order_ids == ["order-1"]
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]


async def test_a_redelivered_order_is_acknowledged_and_picked_up_once(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore, wakes: RecordingWaker
) -> None:
    assert await sidecar.deliver(created()) == "SUCCESS"
    assert await sidecar.deliver(created()) == "SUCCESS"

    assert len(store.writes["order-1"]) == 1
    assert wakes.order_ids == ["order-1", "order-1"]  # still leased to this worker: woken again, in case it never was


async def test_a_cancellation_is_routed_to_the_order_it_cancels(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    assert await sidecar.deliver(created()) == "SUCCESS"

    assert await sidecar.deliver(cancelled()) == "SUCCESS"

    assert store.record("order-1").status is FulfillmentStatus.CANCELLED


async def test_a_cancellation_of_an_order_never_picked_up_is_acknowledged(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    assert await sidecar.deliver(cancelled("order-unknown")) == "SUCCESS"

    assert not store.has("order-unknown")


@pytest.mark.parametrize(
    "body",
    [
        cloud_event("order.created.v1", {"order_id": "order-1"}),
        ["not", "a", "cloudevent"],
        cloud_event("order.cancelled.v1", {"order_id": "order-1"}),
        cloud_event("bogus.v1", {"order_id": "order-1"}),
        cloud_event("com.dapr.event.sent", "not json at all"),
        {"no": "envelope"},
    ],
    ids=[
        "schema-invalid order",
        "not a cloudevent",
        "schema-invalid cancellation",
        "type outside the contract",
        "raw payload",
        "no envelope",
    ],
)
async def test_poison_is_dead_lettered(
    sidecar: BulkSidecar,
    client: httpx.AsyncClient,
    store: FakeFulfillmentStore,
    publisher: FakeEventPublisher,
    body: object,
) -> None:
    assert await sidecar.deliver(body) == "DROP"

    assert not store.has("order-1")
    assert publisher.published == []


async def test_a_batch_of_new_orders_is_picked_up_in_one_transaction_and_announced_in_one_publish(
    sidecar: BulkSidecar,
    client: httpx.AsyncClient,
    store: FakeFulfillmentStore,
    publisher: FakeEventPublisher,
    wakes: RecordingWaker,
) -> None:
    ids = [f"order-{index}" for index in range(50)]
    inserts: list[int] = []
    insert_many = store.insert_many

    async def counted(records: list[FulfillmentRecord], *, now: Any) -> None:
        inserts.append(len(records))
        await insert_many(records, now=now)

    store.insert_many = counted  # type: ignore[method-assign]

    assert await sidecar.deliver_batch(*(created(order_id) for order_id in ids)) == ["SUCCESS"] * 50

    assert inserts == [50]
    assert all(store.record(order_id).status is FulfillmentStatus.PENDING for order_id in ids)
    assert wakes.order_ids == ids
    assert publisher.published == [FulfillmentStarted(order_id=order_id, picked_up_at=T0) for order_id in ids]


async def test_a_batch_that_holds_an_order_picked_up_before_picks_each_up_once(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher
) -> None:
    assert await sidecar.deliver(created("order-1")) == "SUCCESS"

    assert await sidecar.deliver_batch(created("order-2"), created("order-1"), created("order-3")) == ["SUCCESS"] * 3

    assert {order_id: len(store.writes[order_id]) for order_id in store.writes} == {
        "order-1": 1, "order-2": 1, "order-3": 1
    }  # fmt: skip
    announced = [event.order_id for event in publisher.of_type(FulfillmentStarted.event_type)]
    assert sorted(announced) == ["order-1", "order-1", "order-2", "order-3"]  # the repeat announces it again


async def test_a_cancellation_after_its_order_in_the_same_batch_is_handled_after_the_pickup(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    statuses = await sidecar.deliver_batch(created("order-1"), created("order-2"), cancelled("order-1"))

    assert statuses == ["SUCCESS"] * 3
    assert store.record("order-1").status is FulfillmentStatus.CANCELLED
    assert store.record("order-2").status is FulfillmentStatus.PENDING


async def test_when_a_pickup_cannot_be_announced_it_and_its_orders_later_events_are_delivered_again(
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore, publisher: FakeEventPublisher
) -> None:
    """A cancellation must never be handled before the pickup it follows: both are answered RETRY."""
    publisher.failing = ConnectionError("broker down")

    statuses = await sidecar.deliver_batch(created("order-1"), cancelled("order-1"))

    assert statuses == ["RETRY", "RETRY"]
    assert store.record("order-1").status is FulfillmentStatus.PENDING  # the work is safe; the cancel waits
    publisher.failing = None
    assert await sidecar.deliver_batch(created("order-1"), cancelled("order-1")) == ["SUCCESS", "SUCCESS"]
    assert store.record("order-1").status is FulfillmentStatus.CANCELLED


async def test_a_body_that_is_no_bulk_delivery_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(EVENTS, content=json.dumps(created()), headers={**JSON_HEADERS, **SIDECAR_HEADERS})

    assert_problem(response, 400)


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
    sidecar: BulkSidecar, client: httpx.AsyncClient, store: FakeFulfillmentStore, event: dict[str, Any]
) -> None:
    assert await sidecar.deliver(event) == "SUCCESS"

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
        f"t={SIGNED_NOW},v1=" + "0" * 64,
        signature_of(report(), b"another-secret", SIGNED_NOW),
        signature_of(report(), WEBHOOK_SECRET.encode(), SIGNED_NOW).partition(",")[2],
        signature_of(report(shipment_id="shp-other"), WEBHOOK_SECRET.encode(), SIGNED_NOW),
        signature_of(report(), WEBHOOK_SECRET.encode(), SIGNED_NOW).replace(f"t={SIGNED_NOW}", f"t={SIGNED_NOW + 1}"),
        "sha256=" + signature_of(report(), WEBHOOK_SECRET.encode(), SIGNED_NOW).partition("v1=")[2],
        signature_of(report(), WEBHOOK_SECRET.encode(), SIGNED_NOW - 301),
        signature_of(report(), WEBHOOK_SECRET.encode(), SIGNED_NOW + 301),
    ],
    ids=[
        "garbage",
        "another secret",
        "no timestamp",
        "signature of another body",
        "timestamp changed after signing",
        "the old untimed format",
        "signed over five minutes ago (a replay)",
        "signed over five minutes ahead",
    ],
)
async def test_a_delivery_report_with_a_bad_signature_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, wakes: RecordingWaker, signature: str
) -> None:
    await store_shipped(store)
    before = store.record("order-1")

    assert_problem(await send_report(client, report(), signature=signature), 401)

    assert store.record("order-1") == before
    assert wakes.order_ids == []


@pytest.mark.parametrize("signed_at", [SIGNED_NOW - 300, SIGNED_NOW + 300], ids=["5 min ago", "5 min ahead"])
async def test_a_delivery_report_signed_within_five_minutes_of_our_clock_is_accepted(
    client: httpx.AsyncClient, store: FakeFulfillmentStore, signed_at: int
) -> None:
    await store_shipped(store)
    body = report()

    response = await send_report(client, body, signature=signature_of(body, WEBHOOK_SECRET.encode(), signed_at))

    assert response.status_code == 204, response.text
    assert store.record("order-1").status is FulfillmentStatus.DELIVERED


async def test_a_delivery_report_over_16_kib_is_a_413_before_its_signature_is_checked(
    client: httpx.AsyncClient, store: FakeFulfillmentStore
) -> None:
    await store_shipped(store)
    body = json.dumps({"pad": "x" * 16 * 1024}).encode()

    assert_problem(await send_report(client, body), 413)

    assert store.record("order-1").status is FulfillmentStatus.SHIPPED


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
    assert view["void_attempts"] == 0
    assert view["events_to_publish"] == []


async def test_reading_the_record_of_an_order_never_picked_up_is_not_found(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/fulfillments/order-unknown"), 404)


@pytest.mark.parametrize("order_id", ["work-index%7C0", "a%7C%7Cb", "a.b"])
async def test_a_path_id_outside_the_id_format_is_a_422(client: httpx.AsyncClient, order_id: str) -> None:
    """Internal state keys (all with a `|`) and keys Dapr refuses (`||`) were looked up as records."""
    assert_problem(await client.get(f"/fulfillments/{order_id}"), 422)


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    app = create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN, CARRIER_WEBHOOK_SECRET=WEBHOOK_SECRET))

    assert thread_pool_calls(app) == []
