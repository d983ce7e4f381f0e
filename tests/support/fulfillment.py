"""Looking at fulfillment from outside: the carrier's admin lists, fulfillment's own record, the stack's secrets."""

from typing import Any

import httpx
from devstack.dapr import stored_secrets
from devstack.layout import Layout

from tests.support.orders import new_order

FULFILLMENT_URL = "http://127.0.0.1:8001"


def created(order_api: httpx.Client, order: dict[str, Any] | None = None) -> str:
    response = order_api.post("/orders", json=order or new_order())
    assert response.status_code == 201, response.text
    order_id: str = response.json()["id"]
    return order_id


def rejected_order() -> dict[str, Any]:
    """An order the carrier refuses for good (the mock rejects postal codes starting with REJECT)."""
    order = new_order()
    order["customer"]["shipping_address"]["postal_code"] = "REJECT 1"
    return order


def shipments(carrier_admin: httpx.Client, order_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = carrier_admin.get("/admin/shipments", params={"order_id": order_id}).json()
    return found


def carrier_calls(carrier_admin: httpx.Client, order_id: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = carrier_admin.get("/admin/requests", params={"order_id": order_id}).json()
    return calls


def fulfillment_record(order_id: str, base_url: str = FULFILLMENT_URL) -> dict[str, Any] | None:
    response = httpx.get(f"{base_url}/fulfillments/{order_id}", timeout=10)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    record: dict[str, Any] = response.json()
    return record


def stack_secret(name: str) -> str:
    """A secret `make up` generated for the stack (tools/src/devstack/dapr.py, stack_secrets)."""
    value = stored_secrets(Layout.discover()).get(name)
    if value is None:
        raise AssertionError(f"{name} not in the stack's secrets file")
    return value


def sidecar_headers() -> dict[str, str]:
    """What every call of a test to a sidecar's API carries: the stack's Dapr API token."""
    return {"dapr-api-token": stack_secret("DAPR_API_TOKEN")}
