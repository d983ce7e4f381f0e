"""The published API description: /openapi.json documents what the routes answer, and /docs renders it."""

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    found: dict[str, Any] = document["paths"][path][method]
    return found


def problem_schema(response: dict[str, Any]) -> str:
    """The component a documented error response refers to (it must be problem+json, and only that)."""
    assert list(response["content"]) == [PROBLEM], response
    ref: str = response["content"][PROBLEM]["schema"]["$ref"]
    return ref


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


async def test_post_orders_documents_its_answers(document: dict[str, Any]) -> None:
    responses = operation(document, "post", "/orders")["responses"]

    assert set(responses) == {"201", "400", "409", "413", "415", "422"}
    assert responses["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}
    assert "Location" in responses["201"]["headers"]
    for status in ("400", "409", "413", "415"):
        assert problem_schema(responses[status]) == "#/components/schemas/Problem"
    assert problem_schema(responses["422"]) == "#/components/schemas/ValidationProblem"


async def test_post_orders_takes_a_create_order_request(document: dict[str, Any]) -> None:
    body = operation(document, "post", "/orders")["requestBody"]

    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CreateOrderRequest"}
    schema = document["components"]["schemas"]["CreateOrderRequest"]
    assert set(schema["required"]) == {"customer", "items", "currency"}
    assert schema["additionalProperties"] is False


async def test_post_orders_documents_the_idempotency_key_header(document: dict[str, Any]) -> None:
    [parameter] = [
        parameter
        for parameter in operation(document, "post", "/orders")["parameters"]
        if parameter["name"] == "Idempotency-Key"
    ]

    assert parameter["in"] == "header"
    assert parameter["required"] is False
    assert "255" in parameter["description"]


async def test_get_order_documents_200_and_404(document: dict[str, Any]) -> None:
    responses = operation(document, "get", "/orders/{order_id}")["responses"]

    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}
    assert problem_schema(responses["404"]) == "#/components/schemas/Problem"


async def test_cancel_order_documents_200_404_and_409(document: dict[str, Any]) -> None:
    cancel = operation(document, "post", "/orders/{order_id}/cancel")
    responses = cancel["responses"]

    assert responses["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/OrderOut"}
    assert problem_schema(responses["404"]) == "#/components/schemas/Problem"
    assert problem_schema(responses["409"]) == "#/components/schemas/Problem"
    assert cancel["requestBody"].get("required", False) is False


async def test_every_documented_422_is_a_problem_not_fastapis_default(document: dict[str, Any]) -> None:
    unprocessable = [
        operation["responses"]["422"]
        for path_item in document["paths"].values()
        for operation in path_item.values()
        if "422" in operation["responses"]
    ]

    assert unprocessable
    assert {problem_schema(response) for response in unprocessable} == {"#/components/schemas/ValidationProblem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_every_reference_resolves(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    prefix = "#/components/schemas/"

    found = refs(document)

    assert found
    assert all(ref.startswith(prefix) for ref in found), found
    assert {ref.removeprefix(prefix) for ref in found} <= set(schemas)


async def test_the_docs_page_is_html_that_loads_the_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in response.text


async def test_only_the_sidecars_endpoints_require_its_token(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["DaprApiToken"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "dapr-api-token")

    secured = {
        (method, path)
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
        if operation.get("security")
    }

    assert secured == {("get", "/dapr/subscribe"), ("post", "/events/fulfillment-events")}
    assert "security" not in document  # no global requirement: the order API and health are public
    for method, path in secured:
        assert operation(document, method, path)["security"] == [{"DaprApiToken": []}]
        assert problem_schema(operation(document, method, path)["responses"]["401"]) == "#/components/schemas/Problem"
