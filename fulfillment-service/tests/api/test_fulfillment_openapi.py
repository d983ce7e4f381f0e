"""/openapi.json documents every answer the app gives: each status an operation answers, with the media type it is
sent as (schemathesis on the live stack found 401s, 404s and 400s left out, and 422s documented as application/json
while they are problems; tests/e2e/test_live_api_schemas.py).

The app runs in process on the fakes, as in test_fulfillment_deliveries.py (no lifespan, so no Dapr)."""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fulfillment_service.config import Settings
from fulfillment_service.handlers import UnknownOrderError
from fulfillment_service.main import MAX_BODY_BYTES, create_app
from service_runtime.bulk_testing import FakeDeadLetters

pytestmark = pytest.mark.anyio

TOKEN = "test-app-api-token"
SECRET = "test-carrier-webhook-secret"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REPORT = {"shipment_id": "shp-1", "order_id": "order-1", "status": "delivered", "delivered_at": "2026-12-06T11:00:00Z"}


class NoFulfillments:
    """A store that never picked anything up: every read finds nothing."""

    async def get(self, order_id: str) -> None:
        return None


class NoOrders:
    """The use cases the routes call, as they are when fulfillment knows no order (its clock stands at NOW)."""

    store = NoFulfillments()

    def clock(self) -> datetime:
        return NOW

    async def record_delivery(self, *, order_id: str, **_: Any) -> None:
        raise UnknownOrderError(order_id)


@pytest.fixture
def app() -> FastAPI:
    app = create_app(Settings(APP_API_TOKEN=TOKEN, CARRIER_WEBHOOK_SECRET=SECRET))
    app.state.fulfillment_handlers = NoOrders()
    app.state.dead_letters = FakeDeadLetters()
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def signed(body: bytes, at: datetime = NOW) -> dict[str, str]:
    signed_at = int(at.timestamp())
    digest = hmac.new(SECRET.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Carrier-Signature": f"t={signed_at},v1={digest}"}


def assert_documented(app: FastAPI, method: str, path: str, response: httpx.Response) -> None:
    operation = app.openapi()["paths"][path][method.lower()]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path}: {response.status_code} is not documented"
    if response.content:
        media_type = response.headers["content-type"].split(";")[0]
        assert media_type in documented.get("content", {}), f"{method} {path} {response.status_code}: {media_type}"


JSON = {"Content-Type": "application/json"}
REPORT_BODY = json.dumps(REPORT).encode()
NOT_A_REPORT = json.dumps({**REPORT, "status": "lost"}).encode()


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    """The operation's path in the document."""
    url: str
    status: int
    """What the app answers."""
    request: dict[str, Any] = field(default_factory=dict)


WEBHOOK = "/webhooks/carrier"
EXPIRED = timedelta(minutes=10)
"""Signed this long ago, a report is refused (replayed)."""
CALLS = [
    Call("GET", "/dapr/subscribe", "/dapr/subscribe", 401),
    Call("GET", "/dapr/subscribe", "/dapr/subscribe", 401, {"headers": {"dapr-api-token": "guess"}}),
    Call("POST", "/events/order-events", "/events/order-events", 401),
    Call("POST", "/events/order-events", "/events/order-events", 400, {"headers": {"dapr-api-token": TOKEN}}),
    Call("GET", "/fulfillments/{order_id}", "/fulfillments/order-1", 404),
    Call("GET", "/fulfillments/{order_id}", "/fulfillments/not%20an%20id", 422),
    Call("POST", WEBHOOK, WEBHOOK, 401, {"content": REPORT_BODY, "headers": JSON}),
    Call("POST", WEBHOOK, WEBHOOK, 401, {"content": REPORT_BODY, "headers": signed(REPORT_BODY, NOW - EXPIRED)}),
    Call("POST", WEBHOOK, WEBHOOK, 404, {"content": REPORT_BODY, "headers": signed(REPORT_BODY)}),
    Call("POST", WEBHOOK, WEBHOOK, 422, {"content": NOT_A_REPORT, "headers": signed(NOT_A_REPORT)}),
    Call("POST", WEBHOOK, WEBHOOK, 415, {"content": REPORT_BODY, "headers": {"Content-Type": "text/plain"}}),
    Call("POST", WEBHOOK, WEBHOOK, 413, {"content": b"x" * (MAX_BODY_BYTES + 1), "headers": JSON}),
]  # fmt: skip


@pytest.mark.parametrize("call", CALLS, ids=[f"{call.method} {call.url} {call.status}" for call in CALLS])
async def test_every_error_answered_is_documented_as_a_problem(
    app: FastAPI, client: httpx.AsyncClient, call: Call
) -> None:
    response = await client.request(call.method, call.url, **call.request)

    assert response.status_code == call.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert_documented(app, call.method, call.path, response)


def test_the_carrier_report_body_is_documented(app: FastAPI) -> None:
    """The webhook reads its body raw (the signature is over its bytes), so FastAPI cannot see it."""
    body = app.openapi()["paths"]["/webhooks/carrier"]["post"]["requestBody"]

    schema = body["content"]["application/json"]["schema"]
    assert body["required"] is True
    assert set(schema["required"]) == set(REPORT)
    assert schema["properties"]["status"]["const"] == "delivered"


def test_no_error_is_documented_as_plain_json(app: FastAPI) -> None:
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and (path, status) != ("/readyz", "503"):
                    assert list(answer.get("content", {})) == ["application/problem+json"], (method, path, status)
