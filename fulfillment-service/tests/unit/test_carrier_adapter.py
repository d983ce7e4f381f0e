"""The carrier adapter against a mocked sidecar (respx): what each carrier answer becomes for the worker."""

from collections.abc import AsyncIterator

import httpx
import pytest
import respx
from fulfillment_fakes import order_created
from fulfillment_service.adapters.carrier import CarrierUnavailableError, DaprInvokedCarrier
from fulfillment_service.domain import Shipment

pytestmark = pytest.mark.anyio

SIDECAR_URL = "http://sidecar.test"
SHIPMENTS_URL = f"{SIDECAR_URL}/v1.0/invoke/carrier/method/shipments"
SHIPMENT_VIEW = {
    "shipment_id": "shp-1",
    "order_id": "order-1",
    "carrier": "Mock Parcel",
    "tracking_number": "T-1",
    "status": "label_created",
    "estimated_delivery": "2026-11-27",
}
"""A shipment as the carrier describes it: more fields than fulfillment reads."""

NOT_A_SHIPMENT = {
    "not JSON": httpx.Response(201, text="<html>OK</html>"),
    "empty": httpx.Response(201),
    "a field missing": httpx.Response(201, json={"shipment_id": "shp-1", "carrier": "Mock Parcel"}),
    "a field of the wrong type": httpx.Response(201, json={**SHIPMENT_VIEW, "shipment_id": None}),
    "a list": httpx.Response(201, json=[SHIPMENT_VIEW]),
}
"""2xx answers to a create that do not say which shipment was created."""


@pytest.fixture
async def carrier() -> AsyncIterator[DaprInvokedCarrier]:
    async with httpx.AsyncClient() as http:
        yield DaprInvokedCarrier(http, sidecar_url=SIDECAR_URL, endpoint="carrier")


async def test_a_created_shipment_is_read_from_the_carriers_answer(carrier: DaprInvokedCarrier) -> None:
    with respx.mock(assert_all_called=True) as sidecar:
        sidecar.post(SHIPMENTS_URL).respond(201, json=SHIPMENT_VIEW)
        shipment = await carrier.create_shipment(order_created("order-1"))

    assert shipment == Shipment(shipment_id="shp-1", carrier="Mock Parcel", tracking_number="T-1")


@pytest.mark.parametrize("answer", NOT_A_SHIPMENT.values(), ids=NOT_A_SHIPMENT.keys())
async def test_a_2xx_to_a_create_that_is_not_a_shipment_is_a_carrier_failure_worth_retrying(
    carrier: DaprInvokedCarrier, answer: httpx.Response
) -> None:
    """The carrier may have created the shipment: the retry (same idempotency key) gets it back, or the order is
    failed in time and the carrier searched for it, as after any other carrier failure."""
    with respx.mock(assert_all_called=True) as sidecar:
        sidecar.post(SHIPMENTS_URL).mock(return_value=answer)
        with pytest.raises(CarrierUnavailableError, match=r"^HTTP 201, unreadable answer: "):
            await carrier.create_shipment(order_created("order-1"))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>OK</html>"),
        httpx.Response(200, json={"shipments": []}),
        httpx.Response(200, json=[{**SHIPMENT_VIEW, "status": None}]),
    ],
    ids=["not JSON", "not a list", "a shipment without its status"],
)
async def test_a_2xx_to_a_search_that_is_not_a_list_of_shipments_is_a_carrier_failure_worth_retrying(
    carrier: DaprInvokedCarrier, answer: httpx.Response
) -> None:
    with respx.mock(assert_all_called=True) as sidecar:
        sidecar.get(SHIPMENTS_URL).mock(return_value=answer)
        with pytest.raises(CarrierUnavailableError, match=r"^HTTP 200, unreadable answer: "):
            await carrier.find_shipment("order-1")


async def test_a_search_reads_the_shipment_the_carrier_holds_and_whether_it_is_voided(
    carrier: DaprInvokedCarrier,
) -> None:
    with respx.mock(assert_all_called=True) as sidecar:
        sidecar.get(SHIPMENTS_URL, params={"order_id": "order-1"}).respond(
            200, json=[{**SHIPMENT_VIEW, "status": "voided"}]
        )
        found = await carrier.find_shipment("order-1")

    assert found is not None
    assert found.shipment == Shipment(shipment_id="shp-1", carrier="Mock Parcel", tracking_number="T-1")
    assert found.voided
