"""/openapi.json documents what the mock answers, and a 405 names every method of the path (schemathesis on the live
stack found ``Allow: POST`` for ``/shipments``, a create body and a required Idempotency-Key left undocumented, and
422s documented as application/json while they are problems; tests/e2e/test_live_api_schemas.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from shipping_mock.main import MAX_BODY_BYTES, create_app
from shipping_mock_testkit import PROBLEM_CONTENT_TYPE, new_key, new_order_id, shipment_body

pytestmark = pytest.mark.anyio


@pytest.fixture
def openapi() -> dict[str, Any]:
    return create_app().openapi()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/shipments", "GET, POST"),
        ("DELETE", "/shipments", "GET, POST"),
        ("PATCH", "/admin/faults", "GET, PUT, DELETE"),
        ("POST", "/admin/shipments", "GET, DELETE"),
        ("GET", "/shipments/shp-1/cancel", "POST"),
    ],
)
async def test_a_405_allows_every_method_of_the_path(
    carrier: httpx.AsyncClient, method: str, path: str, allowed: str
) -> None:
    response = await carrier.request(method, path)

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.headers["allow"] == allowed


def test_the_create_body_and_its_idempotency_key_are_documented(openapi: dict[str, Any]) -> None:
    create = openapi["paths"]["/shipments"]["post"]

    assert create["requestBody"]["required"] is True
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ShipmentRequest"}
    assert set(openapi["components"]["schemas"]["ShipmentRequest"]["required"]) == {"order_id", "recipient", "items"}
    (key,) = [parameter for parameter in create["parameters"] if parameter["name"] == "Idempotency-Key"]
    assert key["required"] is True
    assert (key["schema"]["minLength"], key["schema"]["maxLength"]) == (1, 255)


def test_every_error_is_documented_as_a_problem(openapi: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert answer["content"] == {PROBLEM_CONTENT_TYPE: {"schema": problem}}, (method, path, status)
    assert "HTTPValidationError" not in openapi["components"]["schemas"]


@pytest.mark.parametrize(("method", "path"), [("POST", "/shipments"), ("PUT", "/admin/faults")])
def test_a_body_too_large_or_not_json_is_documented(openapi: dict[str, Any], method: str, path: str) -> None:
    responses = openapi["paths"][path][method.lower()]["responses"]

    assert {"413", "415"} <= set(responses)


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    path: str
    """The operation's path in the document."""
    status: int
    """What the mock answers."""
    request: dict[str, Any] = field(default_factory=dict)


JSON = {"Content-Type": "application/json"}
CALLS = [
    Call("POST", "/shipments", "/shipments", 400, {"json": shipment_body("ord-1")}),
    Call("POST", "/shipments", "/shipments", 422, {"json": {}, "headers": {"Idempotency-Key": "k"}}),
    Call("POST", "/shipments", "/shipments", 415, {"content": b"{}", "headers": {"Content-Type": "text/plain"}}),
    Call("POST", "/shipments", "/shipments", 413, {"content": b"x" * (MAX_BODY_BYTES + 1), "headers": JSON}),
    Call("GET", "/shipments", "/shipments", 422),
    Call("GET", "/shipments/shp-1", "/shipments/{shipment_id}", 404),
    Call("POST", "/shipments/shp-1/cancel", "/shipments/{shipment_id}/cancel", 404),
    Call("PUT", "/admin/faults", "/admin/faults", 422, {"json": {"error_rate": 2}}),
]


@pytest.mark.parametrize("call", CALLS, ids=[f"{call.method} {call.url} {call.status}" for call in CALLS])
async def test_every_error_answered_is_documented(
    carrier: httpx.AsyncClient, openapi: dict[str, Any], call: Call
) -> None:
    response = await carrier.request(call.method, call.url, **call.request)

    assert response.status_code == call.status, response.text
    documented = openapi["paths"][call.path][call.method.lower()]["responses"][str(call.status)]
    assert response.headers["content-type"] in documented["content"]


async def test_a_documented_create_is_accepted(carrier: httpx.AsyncClient) -> None:
    """What the document now asks for (the body, the key) is what the mock takes."""
    response = await carrier.post(
        "/shipments", json=shipment_body(new_order_id()), headers={"Idempotency-Key": new_key()}
    )

    assert response.status_code == 201, response.text
