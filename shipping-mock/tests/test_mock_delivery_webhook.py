"""Delivery webhooks: signed, retried until a 2xx, never for a voided shipment, only when configured."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import anyio
import httpx
import pytest
import respx
from pydantic import ValidationError
from shipping_mock.config import Settings
from shipping_mock.main import create_app
from shipping_mock.state import CarrierState
from shipping_mock_testkit import (
    StartCarrier,
    assert_problem,
    create_shipment,
    new_key,
    new_order_id,
    parse_utc,
    shipment_body,
    shipments_of,
    wait_until,
)

pytestmark = pytest.mark.anyio

WEBHOOK_URL = "http://orders.test/webhooks/carrier"
WEBHOOK_SECRET = "whsec_test_only"


def expected_signature(body: bytes, signed_at: int) -> str:
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"


def signing_time(request: httpx.Request) -> int:
    """The `t=` of the request's signature header (Unix seconds)."""
    timestamp, _, _ = request.headers["X-Carrier-Signature"].removeprefix("t=").partition(",")
    return int(timestamp)


async def test_delivery_is_reported_signed_and_retried_until_accepted(start_carrier: StartCarrier) -> None:
    received: list[httpx.Request] = []
    accepted = anyio.Event()
    started = int(time.time())

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        if len(received) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if len(received) == 2:
            return httpx.Response(500)
        if len(received) == 3:
            return httpx.Response(401)
        accepted.set()
        return httpx.Response(204)

    # At the httpx client, not its transport: the app sends over aiohttp (httpx-aiohttp).
    with respx.mock(using="httpx", assert_all_called=True) as webhooks:
        webhooks.post(WEBHOOK_URL).mock(side_effect=receiver)
        webhooks.route(host="carrier.test").pass_through()  # the test's own calls to the carrier app
        carrier = await start_carrier(webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET)
        order_id = new_order_id()
        shipment = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()

        with anyio.fail_after(5):
            await accepted.wait()

        async def delivered() -> bool:
            status: str = (await carrier.get(f"/shipments/{shipment['shipment_id']}")).json()["status"]
            return status == "delivered"

        await wait_until(delivered)
    finished = int(time.time())

    assert len(received) == 4
    bodies = {request.content for request in received}
    assert len(bodies) == 1, "every attempt sends the same body"
    [body] = bodies
    for request in received:
        assert started <= signing_time(request) <= finished, "each attempt is signed when it is sent"
        assert request.headers["X-Carrier-Signature"] == expected_signature(body, signing_time(request))
        assert request.headers["Content-Type"] == "application/json"
    report = json.loads(body)
    assert set(report) == {"shipment_id", "order_id", "status", "delivered_at"}
    assert report["shipment_id"] == shipment["shipment_id"]
    assert report["order_id"] == order_id
    assert report["status"] == "delivered"
    [record] = await shipments_of(carrier, order_id)
    assert record["status"] == "delivered"
    assert parse_utc(record["delivered_at"]) == parse_utc(report["delivered_at"])
    # Delivered parcels cannot be voided any more.
    assert_problem(await carrier.post(f"/shipments/{shipment['shipment_id']}/cancel"), 409, "shipment-delivered")


async def test_a_voided_shipment_is_never_reported(start_carrier: StartCarrier) -> None:
    reported: list[str] = []
    later_reported = anyio.Event()

    def receiver(request: httpx.Request) -> httpx.Response:
        reported.append(json.loads(request.content)["shipment_id"])
        later_reported.set()
        return httpx.Response(200)

    # At the httpx client, not its transport: the app sends over aiohttp (httpx-aiohttp).
    with respx.mock(using="httpx", assert_all_called=True) as webhooks:
        webhooks.post(WEBHOOK_URL).mock(side_effect=receiver)
        webhooks.route(host="carrier.test").pass_through()  # the test's own calls to the carrier app
        carrier = await start_carrier(webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET)
        voided = (await create_shipment(carrier, shipment_body(new_order_id()), new_key())).json()
        assert (await carrier.post(f"/shipments/{voided['shipment_id']}/cancel")).json()["status"] == "voided"
        # A shipment created after the voided one is reported after it would have been.
        later = (await create_shipment(carrier, shipment_body(new_order_id()), new_key())).json()

        with anyio.fail_after(5):
            await later_reported.wait()

    assert reported == [later["shipment_id"]]
    assert (await carrier.get(f"/shipments/{voided['shipment_id']}")).json()["status"] == "voided"


async def test_without_a_webhook_url_nothing_is_scheduled() -> None:
    for settings, expected_pending in (
        (Settings(), 0),
        (Settings(webhook_url=WEBHOOK_URL, webhook_secret=WEBHOOK_SECRET, delivery_after_seconds=60), 1),
    ):
        app = create_app(settings)
        state = app.state.carrier
        assert isinstance(state, CarrierState)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://carrier.test") as carrier,
        ):
            created = await create_shipment(carrier, shipment_body(new_order_id()), new_key())
            assert created.status_code == 201
            assert state.deliveries.pending == expected_pending
        assert state.deliveries.pending == 0, "the lifespan cancels pending reports on shutdown"


def test_a_webhook_url_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="CARRIER_WEBHOOK_SECRET"):
        Settings(webhook_url=WEBHOOK_URL)
