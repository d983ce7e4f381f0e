"""The body limits every app mounts: each path falls under its longest matching prefix, a body over the limit is a 413
(declared or streamed), a body of a media type the path does not take is a 415, and the route never runs."""

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from service_runtime.body_limits import BodyLimit, RequestBodyLimits

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def reached() -> list[str]:
    return []


@pytest.fixture
def client(reached: list[str]) -> TestClient:
    app = FastAPI()

    @app.post("/orders")
    async def orders(request: Request) -> dict[str, int]:
        reached.append("/orders")
        return {"read": len(await request.body())}

    @app.post("/events/in")
    async def events(request: Request) -> dict[str, int]:
        reached.append("/events/in")
        return {"read": len(await request.body())}

    app.add_middleware(
        RequestBodyLimits,
        limits={"/": BodyLimit(max_bytes=100), "/events/": BodyLimit(max_bytes=1000, media_types=None)},
    )
    return TestClient(app)


def chunks(body: bytes, size: int = 10) -> Iterator[bytes]:
    """The body as a stream: sent chunked, without a Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_body_at_the_limit_reaches_the_route(client: TestClient, reached: list[str]) -> None:
    response = client.post("/orders", content=b"x" * 100, headers=JSON)

    assert (response.status_code, response.json()) == (200, {"read": 100})
    assert reached == ["/orders"]


def test_a_declared_length_over_the_limit_is_a_413_problem_and_the_route_never_runs(
    client: TestClient, reached: list[str]
) -> None:
    response = client.post("/orders", content=b"x" * 101, headers=JSON)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Content Too Large"
    assert reached == []


def test_a_streamed_body_over_the_limit_is_a_413(client: TestClient) -> None:
    response = client.post("/orders", content=chunks(b"x" * 101), headers=JSON)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


def test_the_longest_matching_prefix_sets_the_limit_and_the_media_types(client: TestClient, reached: list[str]) -> None:
    taken = client.post("/events/in", content=b"x" * 1000, headers={"Content-Type": "application/cloudevents+json"})
    refused = client.post("/events/in", content=b"x" * 1001, headers=JSON)

    assert taken.status_code == 200
    assert refused.status_code == 413
    assert reached == ["/events/in"]


@pytest.mark.parametrize("headers", [{"Content-Type": "text/plain"}, {}], ids=["text/plain", "no content type"])
def test_a_body_of_a_media_type_the_path_does_not_take_is_a_415(
    client: TestClient, reached: list[str], headers: dict[str, str]
) -> None:
    response = client.post("/orders", content=b"{}", headers=headers)

    assert response.status_code == 415
    assert response.json()["title"] == "Unsupported Media Type"
    assert reached == []


@pytest.mark.parametrize(
    "body", [b"", iter([])], ids=["Content-Length: 0", "chunked, no chunk (as a sidecar forwards a bodiless POST)"]
)
def test_a_post_without_a_body_needs_no_media_type(
    client: TestClient, reached: list[str], body: bytes | Iterator[bytes]
) -> None:
    """The carrier's void (`POST /shipments/{id}/cancel`) has no body; daprd forwards it chunked, without a
    Content-Type. It was refused 415, so no cancelled order's shipment was ever voided."""
    response = client.post("/orders", content=body)

    assert (response.status_code, response.json()) == (200, {"read": 0})
    assert reached == ["/orders"]


def test_a_chunked_body_of_a_media_type_the_path_does_not_take_is_a_415(client: TestClient, reached: list[str]) -> None:
    response = client.post("/orders", content=chunks(b"{}"), headers={"Content-Type": "text/plain"})

    assert "content-length" not in response.request.headers
    assert response.status_code == 415
    assert reached == []


def test_a_json_media_type_with_parameters_is_json(client: TestClient) -> None:
    response = client.post("/orders", content=b"{}", headers={"Content-Type": "Application/JSON; charset=utf-8"})

    assert response.status_code == 200


def test_limits_without_one_for_every_path_are_refused() -> None:
    with pytest.raises(ValueError, match="'/'"):
        RequestBodyLimits(FastAPI(), limits={"/orders": BodyLimit(max_bytes=100)})
