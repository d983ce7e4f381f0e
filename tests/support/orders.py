"""Order payloads and helpers shared by the real-stack tests."""

import copy
from typing import Any

import httpx
from order_service.api.schemas import EXAMPLE_ORDER

from tests.support.polling import eventually

VALID_ORDER: dict[str, Any] = copy.deepcopy(EXAMPLE_ORDER)
"""The order the API documents as its example (order-service/api/schemas.py), valid by construction."""


def new_order(**changes: Any) -> dict[str, Any]:
    order = copy.deepcopy(VALID_ORDER)
    order.update(changes)
    return order


def wait_for_status(api: httpx.Client, order_id: str, status: str, timeout: float) -> dict[str, Any]:
    """The order once it has reached `status`: it is its status now, or was on the way to a later one (the carrier
    reports delivery a few seconds after shipping, so a `shipped` order may be `delivered` by the time it is read)."""

    def probe() -> dict[str, Any] | None:
        order: dict[str, Any] = api.get(f"/orders/{order_id}").json()
        reached = order["status"] == status or any(entry["status"] == status for entry in order["history"])
        return order if reached else None

    return eventually(probe, timeout=timeout, what=f"order {order_id} {status}")
