"""How the fulfillment service answers the sidecar's deliveries: SUCCESS, RETRY, or DROP (dead-letter)."""

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fulfillment_fakes import FakeCarrier, FakeEventPublisher, FakeFulfillmentRecords
from fulfillment_service.adapters.carrier import CarrierUnavailableError
from fulfillment_service.config import Settings
from fulfillment_service.handlers import FulfillmentHandlers
from fulfillment_service.main import create_app

pytestmark = pytest.mark.anyio

ORDER_CREATED = {
    "order_id": "order-1",
    "customer": {
        "id": "cust-42",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "shipping_address": {"line1": "1 St", "city": "London", "postal_code": "SW1A 1AA", "country": "GB"},
    },
    "items": [{"sku": "BOOK-123", "quantity": 1, "unit_price": "12.50"}],
    "currency": "GBP",
    "total": "12.50",
    "created_at": datetime(2026, 11, 24, tzinfo=UTC).isoformat(),
}


def cloud_event(event_type: str, data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "ce-1", "source": "test", "type": event_type, "data": data}


@pytest.fixture
def carrier() -> FakeCarrier:
    return FakeCarrier()


@pytest.fixture
async def client(carrier: FakeCarrier) -> Any:
    app = create_app(Settings())
    app.state.fulfillment_handlers = FulfillmentHandlers(
        records=FakeFulfillmentRecords(), carrier=carrier, publisher=FakeEventPublisher()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def deliver(client: httpx.AsyncClient, path: str, body: object) -> str:
    response = await client.post(
        path, content=json.dumps(body), headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


async def test_a_new_order_is_shipped_and_acknowledged(client: httpx.AsyncClient, carrier: FakeCarrier) -> None:
    assert await deliver(client, "/events/order-created", cloud_event("order.created.v1", ORDER_CREATED)) == "SUCCESS"
    assert carrier.calls == ["order-1"]


async def test_an_unavailable_carrier_asks_for_redelivery(client: httpx.AsyncClient, carrier: FakeCarrier) -> None:
    carrier.failure = CarrierUnavailableError("HTTP 503")

    assert await deliver(client, "/events/order-created", cloud_event("order.created.v1", ORDER_CREATED)) == "RETRY"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/events/order-created", cloud_event("order.created.v1", {"order_id": "order-1"})),
        ("/events/order-created", ["not", "a", "cloudevent"]),
        ("/events/other", cloud_event("bogus.v1", {"order_id": "x"})),
        ("/events/other", cloud_event("com.dapr.event.sent", "not json at all")),
        ("/events/other", {"no": "envelope"}),
    ],
    ids=["schema-invalid order", "not a cloudevent", "type outside the contract", "raw payload", "no envelope"],
)
async def test_poison_is_dead_lettered(
    client: httpx.AsyncClient, carrier: FakeCarrier, path: str, body: object
) -> None:
    assert await deliver(client, path, body) == "DROP"
    assert carrier.calls == []


async def test_a_contract_event_this_service_does_not_handle_is_acknowledged(client: httpx.AsyncClient) -> None:
    cancelled = {"order_id": "order-1", "reason": "r", "cancelled_at": datetime(2026, 11, 24, tzinfo=UTC).isoformat()}

    assert await deliver(client, "/events/other", cloud_event("order.cancelled.v1", cancelled)) == "SUCCESS"
