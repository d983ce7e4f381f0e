"""The order service's real app, its use cases built on fakes, driven over HTTP in process.

The app's lifespan would build a DaprClient (which waits for a sidecar). httpx's ASGITransport only sends
``http`` scopes, never ``lifespan`` ones, so the lifespan never runs and the app keeps the fakes set here.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from order_service.config import Settings
from order_service.handlers import OrderHandlers
from order_service.main import create_app
from order_service_fakes import (
    SIDECAR_TOKEN,
    FakeEventPublisher,
    FakeIdempotencyKeys,
    FakeOrderRepository,
    FakeReadiness,
    relay_at_once,
)
from service_runtime.bulk_testing import FakeDeadLetters


@pytest.fixture
def orders() -> FakeOrderRepository:
    return FakeOrderRepository()


@pytest.fixture
def publisher() -> FakeEventPublisher:
    return FakeEventPublisher()


@pytest.fixture
def idempotency_keys() -> FakeIdempotencyKeys:
    return FakeIdempotencyKeys()


@pytest.fixture
def handlers(
    orders: FakeOrderRepository, publisher: FakeEventPublisher, idempotency_keys: FakeIdempotencyKeys
) -> OrderHandlers:
    return OrderHandlers(
        orders=orders, idempotency_keys=idempotency_keys, on_events_owed=relay_at_once(orders, publisher)
    )


@pytest.fixture
def readiness() -> FakeReadiness:
    return FakeReadiness()


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def app(handlers: OrderHandlers, readiness: FakeReadiness, dead_letters: FakeDeadLetters) -> FastAPI:
    app = create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN))
    app.state.order_handlers = handlers
    app.state.readiness = readiness
    app.state.dead_letters = dead_letters
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.fixture
def order_body() -> dict[str, Any]:
    """A valid POST /orders body: 2 x 12.50 GBP."""
    return {
        "customer": {
            "id": "cust-42",
            "name": "Jane Doe",
            "email": "jane.doe@example.com",
            "shipping_address": {
                "line1": "1 Example Street",
                "city": "London",
                "postal_code": "SW1A 1AA",
                "country": "GB",
            },
        },
        "items": [{"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"}],
        "currency": "GBP",
    }


@pytest.fixture
async def order(client: httpx.AsyncClient, order_body: dict[str, Any]) -> dict[str, Any]:
    """An order placed through the API (pending), as the API answered it."""
    response = await client.post("/orders", json=order_body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
