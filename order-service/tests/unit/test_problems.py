"""RFC 9457 problem answers: the handlers, JSON pointers, the body reader and the OpenAPI documentation."""

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, HTTPException, Path
from fastapi.testclient import TestClient
from httpx import Response
from order_service.api.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_RESPONSES,
    Problem,
    ProblemError,
    ValidationProblem,
    Violation,
    escape_pointer_token,
    install_problem_handlers,
    json_pointer,
    problem_response,
    status_title,
    violations_from_validation_error,
)
from order_service.api.schemas import CreateOrderRequest
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

MAX_BYTES = 1024


def valid_order() -> dict[str, Any]:
    return {
        "customer": {
            "id": "cust-42",
            "name": "Jane Doe",
            "email": "jane.doe@example.com",
            "shipping_address": {
                "line1": "1 Example Street",
                "city": "London",
                "postal_code": "SW1A 1AA",
                "country": "GB",
            },
        },
        "items": [{"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"}],
        "currency": "GBP",
    }


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/orders", status_code=201, responses={c: PROBLEM_RESPONSES[c] for c in (400, 413, 415, 422)})
    async def create_order(body: CreateOrderRequest) -> dict[str, str]:
        return {"currency": body.currency, "unit_price": str(body.items[0].unit_price)}

    @app.get("/orders/{order_id}", responses={404: PROBLEM_RESPONSES[404]})
    async def get_order(order_id: Annotated[str, Path(max_length=5)]) -> dict[str, str]:
        raise HTTPException(status_code=404, detail=f"Order {order_id} does not exist.")

    @app.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(409, "Conflict", "The order was already cancelled.", headers={"X-Try": "later"}, order="o-1")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("database password is hunter2")

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(make_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def problem(response: Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    document: dict[str, Any] = response.json()
    assert document["type"] == "about:blank"
    assert document["status"] == status
    assert document["title"] == status_title(status)
    assert document["detail"]
    return document


# --- framework errors ------------------------------------------------------------------------------------------------


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    document = problem(client.get("/no/such/thing"), 404)
    assert document["title"] == "Not Found"
    assert document["instance"] == "/no/such/thing"


def test_wrong_method_is_a_405_problem_with_allow(client: TestClient) -> None:
    response = client.delete("/orders")
    problem(response, 405)
    assert response.headers["allow"] == "POST"
    assert "DELETE" in response.json()["detail"]


def test_http_exception_detail_is_kept(client: TestClient) -> None:
    document = problem(client.get("/orders/o-1"), 404)
    assert document["detail"] == "Order o-1 does not exist."


def test_http_exception_without_detail_gets_the_reason_phrase(client: TestClient) -> None:
    document = problem(client.get("/teapot"), 418)
    assert document["title"] == "I'm a Teapot"


def test_problem_error_carries_headers_and_extension_members(client: TestClient) -> None:
    response = client.get("/conflict")
    document = problem(response, 409)
    assert document["detail"] == "The order was already cancelled."
    assert document["order"] == "o-1"
    assert response.headers["x-try"] == "later"


def test_unhandled_exception_is_a_500_problem_without_internals(client: TestClient) -> None:
    response = client.get("/boom")
    document = problem(response, 500)
    assert "hunter2" not in response.text
    assert "RuntimeError" not in response.text
    assert document["instance"] == "/boom"


def test_invalid_path_parameter_is_a_422_naming_the_parameter(client: TestClient) -> None:
    document = problem(client.get("/orders/too-long-an-id"), 422)
    assert document["errors"] == [{"parameter": "order_id", "message": "Must be at most 5 characters long"}]


# --- request bodies --------------------------------------------------------------------------------------------------

BOTH_PATHS = pytest.mark.parametrize("path", ["/orders"])


@BOTH_PATHS
def test_a_valid_order_is_accepted(client: TestClient, path: str) -> None:
    response = client.post(path, json=valid_order())
    assert response.status_code == 201, response.text
    assert response.json() == {"currency": "GBP", "unit_price": "12.50"}


@BOTH_PATHS
def test_charset_parameter_is_accepted(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=json.dumps(valid_order()), headers={"content-type": "application/json; charset=UTF-8"}
    )
    assert response.status_code == 201, response.text


@BOTH_PATHS
@pytest.mark.parametrize("body", ["{", '{"customer": }', "not json", "[1, 2,]", "{} {}", "\ufeff"])
def test_malformed_json_is_a_400_problem(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    document = problem(response, 400)
    assert document["detail"].startswith("Malformed JSON")
    assert "errors" not in document


@BOTH_PATHS
def test_a_body_that_is_not_utf8_is_a_400_problem(client: TestClient, path: str) -> None:
    response = client.post(path, content=b'{"currency": "\xff"}', headers={"content-type": "application/json"})
    problem(response, 400)


@BOTH_PATHS
def test_a_utf8_byte_order_mark_is_ignored_by_both_paths(client: TestClient, path: str) -> None:
    response = client.post(
        path, content=b"\xef\xbb\xbf" + json.dumps(valid_order()).encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text


@BOTH_PATHS
def test_an_empty_body_is_a_400_problem(client: TestClient, path: str) -> None:
    problem(client.post(path, content=b"", headers={"content-type": "application/json"}), 400)


@BOTH_PATHS
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_is_a_415_problem(client: TestClient, path: str, content_type: str) -> None:
    response = client.post(path, content=json.dumps(valid_order()).encode(), headers={"content-type": content_type})
    problem(response, 415)


@BOTH_PATHS
def test_an_invalid_order_is_a_422_problem_listing_every_violation(client: TestClient, path: str) -> None:
    order = valid_order()
    order["items"] = [
        {"sku": "BOOK-123", "quantity": "2", "unit_price": "12.50"},
        {"sku": "BOOK-123", "quantity": 1, "unit_price": "1.999"},
    ]
    order["customer"]["shipping_address"]["country"] = "gb"
    order["customer"]["nick/name~"] = "JD"
    del order["currency"]
    document = problem(client.post(path, json=order), 422)
    pointers = [error["pointer"] for error in document["errors"]]
    assert sorted(pointers) == sorted(
        [
            "/customer/shipping_address/country",
            "/customer/nick~1name~0",
            "/items/0/quantity",
            "/items/1/sku",
            "/currency",
        ]
    )
    assert all(set(error) == {"pointer", "message"} and error["message"] for error in document["errors"])
    messages = {error["pointer"]: error["message"] for error in document["errors"]}
    assert messages["/currency"] == "Required member is missing"
    assert messages["/items/0/quantity"] == "Must be a JSON integer"
    assert messages["/items/1/sku"] == 'SKU "BOOK-123" is already used by an earlier line of this order'


@pytest.mark.parametrize(
    ("change", "pointer", "message"),
    [
        ({"unit_price": "1000000.01"}, "/items/0/unit_price", "Must be at most 1000000"),
        ({"unit_price": "0"}, "/items/0/unit_price", "Must be greater than 0"),
        ({"quantity": 0}, "/items/0/quantity", "Must be at least 1"),
        ({"quantity": 1001}, "/items/0/quantity", "Must be at most 1000"),
        ({"sku": ""}, "/items/0/sku", "Must not be empty"),
        ({"sku": "S" * 65}, "/items/0/sku", "Must be at most 64 characters long"),
    ],
)
def test_violation_messages_are_readable(
    client: TestClient, change: dict[str, Any], pointer: str, message: str
) -> None:
    order = valid_order()
    order["items"][0].update(change)
    document = problem(client.post("/orders", json=order), 422)
    assert document["errors"] == [{"pointer": pointer, "message": message}]


@pytest.mark.parametrize(
    ("items", "message"),
    [([], "Must contain at least one entry"), ([{}] * 101, "Must contain at most 100 entries")],
)
def test_item_count_messages_are_readable(client: TestClient, items: list[Any], message: str) -> None:
    order = valid_order()
    order["items"] = [{"sku": f"SKU-{n}", "quantity": 1, "unit_price": "1.00"} for n, _ in enumerate(items)]
    document = problem(client.post("/orders", json=order), 422)
    assert document["errors"] == [{"pointer": "/items", "message": message}]


@BOTH_PATHS
def test_a_body_that_is_not_an_object_is_a_422_at_the_root(client: TestClient, path: str) -> None:
    document = problem(client.post(path, json=[valid_order()]), 422)
    assert document["errors"] == [{"pointer": "", "message": "Must be a JSON object"}]


# --- the body reader on its own ------------------------------------------------------------------------------------


# --- pointers and violations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "escaped"),
    [("a/b", "a~1b"), ("m~n", "m~0n"), ("~/", "~0~1"), ("~1", "~01"), ("", ""), ("plain", "plain")],
)
def test_pointer_tokens_are_escaped_per_rfc_6901(token: str, escaped: str) -> None:
    assert escape_pointer_token(token) == escaped


def test_json_pointer_joins_tokens() -> None:
    assert json_pointer(()) == ""
    assert json_pointer(("items", 0, "unit_price")) == "/items/0/unit_price"
    assert json_pointer(("a/b", "c~d", "")) == "/a~1b/c~0d/"


def check_positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be positive")
    return value


class Tagged(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Decimal | list[int]
    count: Annotated[int, AfterValidator(check_positive)] | list[int]
    str: int = 0


@pytest.mark.parametrize("body_known", [True, False])
def test_pydantic_internal_location_parts_never_reach_the_pointer(body_known: bool) -> None:
    payload = {"amount": "lots", "count": -1}
    with pytest.raises(ValidationError) as caught:
        Tagged.model_validate(payload)
    locations = {tuple(error["loc"]) for error in caught.value.errors()}
    assert ("amount", "decimal") in locations  # what pydantic reports; the pointer must not show it
    assert any(str(part).startswith("function-after[") for loc in locations for part in loc)
    violations = (
        violations_from_validation_error(caught.value, body=payload)
        if body_known
        else violations_from_validation_error(caught.value)
    )
    assert {violation.pointer for violation in violations} == {"/amount", "/count"}
    assert "must be positive" in {violation.message for violation in violations}


def test_a_member_named_like_an_internal_part_keeps_its_pointer_when_the_body_is_known() -> None:
    payload = {"amount": "1", "count": 1, "str": "x"}
    with pytest.raises(ValidationError) as caught:
        Tagged.model_validate(payload)
    assert [v.pointer for v in violations_from_validation_error(caught.value, body=payload)] == ["/str"]


def test_an_unknown_member_with_special_characters_is_escaped() -> None:
    payload = {"amount": "1", "count": 1, "a/b": 1, "~": 2}
    with pytest.raises(ValidationError) as caught:
        Tagged.model_validate(payload)
    pointers = {v.pointer for v in violations_from_validation_error(caught.value, body=payload)}
    assert pointers == {"/a~1b", "/~0"}


# --- building problems -------------------------------------------------------------------------------------------


def test_problem_response_is_problem_json() -> None:
    response = problem_response(409, "Conflict", "Already cancelled.", headers={"Retry-After": "5"}, order_id="o-1")
    assert response.status_code == 409
    assert response.media_type == PROBLEM_MEDIA_TYPE
    assert response.headers["retry-after"] == "5"
    assert json.loads(bytes(response.body)) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Already cancelled.",
        "order_id": "o-1",
    }


def test_validation_problem_parses_its_own_answer() -> None:
    document = {
        "type": "about:blank",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": "The request is invalid: 1 violation, listed in errors.",
        "errors": [{"pointer": "/currency", "message": "Required member is missing"}],
    }
    parsed = ValidationProblem.model_validate(document)
    assert parsed.errors == [Violation(pointer="/currency", message="Required member is missing")]
    assert Problem.model_validate(document).status == 422


@pytest.mark.parametrize(
    ("status", "title"),
    [(400, "Bad Request"), (413, "Content Too Large"), (415, "Unsupported Media Type"), (422, "Unprocessable Content")],
)
def test_status_titles_are_rfc_9110_phrases(status: int, title: str) -> None:
    assert status_title(status) == title


# --- OpenAPI -------------------------------------------------------------------------------------------------------


def test_openapi_documents_problems_and_the_request_schema(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"Problem", "ValidationProblem", "Violation", "CreateOrderRequest", "LineItemIn"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    create = document["paths"]["/orders"]["post"]
    assert create["responses"]["422"]["content"] == {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ValidationProblem"}}
    }
    assert create["responses"]["415"]["content"] == {
        PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    # FastAPI's automatic 422 (a route with a path parameter) is rewritten too.
    read = document["paths"]["/orders/{order_id}"]["get"]
    assert PROBLEM_MEDIA_TYPE in read["responses"]["422"]["content"]
    assert schemas["CreateOrderRequest"]["examples"][0]["currency"] == "GBP"
    assert client.get("/openapi.json").json() == document
