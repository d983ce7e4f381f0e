"""The thinnest real path through the system, over the wire: REST -> order service -> its sidecar -> Kafka ->
fulfillment's sidecar -> fulfillment -> carrier (through the sidecar) -> Kafka -> order service -> GET."""

import time

import httpx

from tests.support.fulfillment import sidecar_headers
from tests.support.orders import new_order, wait_for_status

PICKUP_AND_SHIP_WITHIN_SECONDS = 5.0


def test_an_order_posted_to_the_api_ships_within_5_seconds(order_api: httpx.Client) -> None:
    posted_at = time.monotonic()
    created = order_api.post("/orders", json=new_order())

    assert created.status_code == 201, created.text
    order = created.json()
    assert created.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] in {"pending", "processing", "shipped"}
    shipped = wait_for_status(order_api, order["id"], "shipped", timeout=PICKUP_AND_SHIP_WITHIN_SECONDS)
    assert time.monotonic() - posted_at < PICKUP_AND_SHIP_WITHIN_SECONDS
    assert [entry["status"] for entry in shipped["history"]][:3] == ["pending", "processing", "shipped"]
    assert shipped["fulfillment"]["tracking_number"]
    assert shipped["fulfillment"]["carrier"]


def test_the_order_ships_with_the_carriers_tracking_number_and_one_shipment(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    order_id = order_api.post("/orders", json=new_order()).json()["id"]

    shipped = wait_for_status(order_api, order_id, "shipped", timeout=PICKUP_AND_SHIP_WITHIN_SECONDS)

    shipments = carrier_admin.get("/admin/shipments", params={"order_id": order_id}).json()
    assert len(shipments) == 1
    assert shipments[0]["tracking_number"] == shipped["fulfillment"]["tracking_number"]
    assert shipments[0]["shipment_id"] == shipped["fulfillment"]["shipment_id"]


def test_the_same_path_works_through_dapr_service_invocation(order_api: httpx.Client) -> None:
    invoke = "http://127.0.0.1:3500/v1.0/invoke/order-service/method"

    created = httpx.post(f"{invoke}/orders", json=new_order(), headers=sidecar_headers(), timeout=10)

    assert created.status_code == 201, created.text
    order_id = created.json()["id"]
    wait_for_status(order_api, order_id, "shipped", timeout=PICKUP_AND_SHIP_WITHIN_SECONDS)
    read_through_dapr = httpx.get(f"{invoke}/orders/{order_id}", headers=sidecar_headers(), timeout=10)
    assert read_through_dapr.status_code == 200
    assert read_through_dapr.json()["status"] in {"shipped", "delivered"}  # the carrier reports delivery 5 s on
