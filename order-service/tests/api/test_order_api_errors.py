"""Requests the API turns away before any use case runs: every one is answered with an RFC 9457 problem."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from order_service_fakes import FakeEventPublisher

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
MAX_BODY_BYTES = 64 * 1024
JSON = {"Content-Type": "application/json"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "about:blank"
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    return problem


def order_of_size(order_body: dict[str, Any], size: int) -> bytes:
    """A JSON order body of exactly `size` bytes (padded with an unknown member, so it is never valid)."""
    base = json.dumps({**order_body, "pad": ""}).encode()
    body = json.dumps({**order_body, "pad": "x" * (size - len(base))}).encode()
    assert len(body) == size
    return body


async def in_chunks(body: bytes, size: int = 8 * 1024) -> AsyncIterator[bytes]:
    """The body as a stream: httpx then sends it chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_body_that_is_not_json_is_a_415_problem(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    response = await client.post("/orders", content=json.dumps(order_body), headers={"Content-Type": "text/plain"})

    problem = assert_problem(response, 415)
    assert problem["title"] == "Unsupported Media Type"
    assert publisher.published == []


async def test_a_body_without_a_content_type_is_a_415_problem(
    client: httpx.AsyncClient, order_body: dict[str, Any]
) -> None:
    response = await client.post("/orders", content=json.dumps(order_body))

    assert "content-type" not in response.request.headers
    assert_problem(response, 415)


async def test_a_json_content_type_with_parameters_is_json(
    client: httpx.AsyncClient, order_body: dict[str, Any]
) -> None:
    response = await client.post(
        "/orders", content=json.dumps(order_body), headers={"Content-Type": "Application/JSON; charset=utf-8"}
    )

    assert response.status_code == 201, response.text


async def test_a_body_over_64_kib_with_a_content_length_is_a_413_problem(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    body = order_of_size(order_body, MAX_BODY_BYTES + 1)

    response = await client.post("/orders", content=body, headers=JSON)

    assert response.request.headers["content-length"] == str(MAX_BODY_BYTES + 1)
    problem = assert_problem(response, 413)
    assert problem["title"] == "Content Too Large"
    assert publisher.published == []


async def test_a_chunked_body_over_64_kib_is_a_413_problem(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, order_body: dict[str, Any]
) -> None:
    body = order_of_size(order_body, MAX_BODY_BYTES + 1)

    response = await client.post("/orders", content=in_chunks(body), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    problem = assert_problem(response, 413)
    assert problem["title"] == "Content Too Large"
    assert publisher.published == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_of_exactly_64_kib_is_read_and_validated(
    client: httpx.AsyncClient, order_body: dict[str, Any], chunked: bool
) -> None:
    body = order_of_size(order_body, MAX_BODY_BYTES)

    response = await client.post("/orders", content=in_chunks(body) if chunked else body, headers=JSON)

    problem = assert_problem(response, 422)
    assert [error["pointer"] for error in problem["errors"]] == ["/pad"]


@pytest.mark.parametrize("content", [b"{", b'{"customer": }', b"not json", b"\xff\xfe"])
async def test_malformed_json_is_a_400_problem(
    client: httpx.AsyncClient, publisher: FakeEventPublisher, content: bytes
) -> None:
    response = await client.post("/orders", content=content, headers=JSON)

    problem = assert_problem(response, 400)
    assert problem["title"] == "Bad Request"
    assert publisher.published == []


async def test_a_missing_body_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/orders", headers=JSON)

    problem = assert_problem(response, 400)
    assert "missing" in problem["detail"]


@pytest.mark.parametrize("body", [[], "order", 42, None])
async def test_json_that_is_not_an_object_is_a_422_problem_at_the_root(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post("/orders", content=json.dumps(body), headers=JSON)

    problem = assert_problem(response, 422)
    assert [error["pointer"] for error in problem["errors"]] == [""]


async def test_a_cancel_body_that_is_not_json_is_a_415_problem(
    client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    response = await client.post(
        f"/orders/{order['id']}/cancel",
        content="reason=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_problem(response, 415)
    assert (await client.get(f"/orders/{order['id']}")).json()["status"] == "pending"


async def test_an_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/no-such-thing")

    assert_problem(response, 404)


async def test_a_method_the_resource_does_not_allow_is_a_405_problem_with_allow(
    client: httpx.AsyncClient, order: dict[str, Any]
) -> None:
    response = await client.delete(f"/orders/{order['id']}")

    assert_problem(response, 405)
    assert response.headers["allow"] == "GET"


async def test_an_order_id_over_64_characters_is_a_422_problem_naming_the_parameter(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/orders/" + "o" * 65)

    problem = assert_problem(response, 422)
    assert [error.get("parameter") for error in problem["errors"]] == ["order_id"]
