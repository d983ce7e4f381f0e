"""Order payloads and helpers shared by the real-stack tests."""

import copy
from typing import Any

import httpx

from tests.support.polling import eventually

VALID_ORDER: dict[str, Any] = {
    "customer": {
        "id": "cust-42",
        "name": "Jane Doe",
        "email": "jane.doe@example.com",
        "phone": "+44 20 7946 0000",
        "shipping_address": {
            "line1": "1 Example Street",
            "line2": None,
            "city": "London",
            "region": None,
            "postal_code": "SW1A 1AA",
            "country": "GB",
        },
    },
    "items": [{"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"}],
    "currency": "GBP",
}


def new_order(**changes: Any) -> dict[str, Any]:
    order = copy.deepcopy(VALID_ORDER)
    order.update(changes)
    return order


def wait_for_status(api: httpx.Client, order_id: str, status: str, timeout: float) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        order: dict[str, Any] = api.get(f"/orders/{order_id}").json()
        return order if order["status"] == status else None

    return eventually(probe, timeout=timeout, what=f"order {order_id} {status}")
