"""Helpers shared by the shipping-mock tests (a uniquely named module: test dirs have no __init__.py)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
import httpx

StartCarrier = Callable[..., Awaitable[httpx.AsyncClient]]
PROBLEM_CONTENT_TYPE = "application/problem+json"


def new_order_id() -> str:
    return f"ord-{uuid.uuid4().hex[:12]}"


def new_key() -> str:
    return str(uuid.uuid4())


def shipment_body(
    order_id: str, *, country: str = "NL", postal_code: str = "1011 AB", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": order_id,
        "recipient": {
            "name": "Ada Lovelace",
            "phone": "+31 20 555 0100",
            "address": {
                "line1": "Damrak 1",
                "city": "Amsterdam",
                "postal_code": postal_code,
                "country": country,
            },
        },
        "items": [{"sku": "SKU-RED-MUG", "quantity": 2}, {"sku": "SKU-TEA-100G", "quantity": 1}],
    }
    body.update(overrides)
    return body


async def create_shipment(client: httpx.AsyncClient, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return await client.post("/shipments", json=body, headers=headers)


async def set_faults(client: httpx.AsyncClient, **faults: Any) -> None:
    response = await client.put("/admin/faults", json=faults)
    assert response.status_code == 200, response.text


async def shipments_of(client: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    response = await client.get("/admin/shipments", params={"order_id": order_id})
    assert response.status_code == 200
    shipments: list[dict[str, Any]] = response.json()
    return shipments


async def requests_of(client: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    response = await client.get("/admin/requests", params={"order_id": order_id})
    assert response.status_code == 200
    calls: list[dict[str, Any]] = response.json()
    return calls


async def wait_until(condition: Callable[[], Awaitable[bool]], *, within_seconds: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within_seconds``."""
    deadline = time.monotonic() + within_seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within_seconds} s")
        await anyio.sleep(0.01)


def assert_problem(response: httpx.Response, status: int, problem_type: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_CONTENT_TYPE)
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    if problem_type is not None:
        assert problem["type"] == f"https://carrier.example/problems/{problem_type}"
    return problem


def parse_utc(value: str) -> datetime:
    """An RFC 3339 UTC timestamp (``...Z``)."""
    assert value.endswith("Z"), value
    parsed = datetime.fromisoformat(value)
    assert parsed.utcoffset() is not None
    return parsed
