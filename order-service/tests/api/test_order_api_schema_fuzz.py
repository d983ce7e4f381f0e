"""Property-based: /openapi.json describes what the app really answers (schemathesis, against the app in process).

Schemathesis reads the document the app serves at ``/openapi.json`` and generates requests from it: the documented
examples, boundary cases ("coverage"), random schema-valid data and schema-invalid data (wrong types, missing or
unknown members, bad headers, undocumented methods). Every answer is checked against the document (``CONFIG``):

* ``not_a_server_error``: no 5xx, whatever the request;
* ``status_code_conformance``: the status is one the operation documents;
* ``content_type_conformance``: the Content-Type is the one documented for that status (``application/problem+json``
  for the errors);
* ``response_schema_conformance``: the body validates against the documented schema (``OrderOut``, ``Problem``,
  ``ValidationProblem``, ...), formats included;
* ``response_headers_conformance``: documented response headers (``Location`` on 201) are sent and match;
* ``negative_data_rejection``: a request the document forbids is refused with a 4xx;
* ``missing_required_header``, ``unsupported_method``, ``allow_header_conformance``: headers the document requires
  are required, undocumented methods answer 405 with ``Allow``;
* ``ensure_resource_availability`` (stateful run only): an order answered 201 can be read.
* ``ignored_auth``: an operation that requires the sidecar's token (security scheme ``DaprApiToken``, the
  ``dapr-api-token`` header) refuses a request without it or with a wrong one (401).

Three runs: every operation on its own (``test_every_operation_answers_as_documented``, one test per operation),
chains of calls that create, read and cancel orders (``test_order_workflows_answer_as_documented``), and the answers
generated requests cannot reach (a state set up out of band, two requests that must agree, a huge body), each sent
once and checked by the same checks.

Not checked: ``positive_data_acceptance`` (a schema-valid request must be accepted). The app enforces rules that its
document states in prose but JSON Schema cannot express, so it refuses some schema-valid requests, with a documented
400/422 problem: at most the currency's ISO 4217 minor unit of decimal places in ``unit_price`` (``"12.50"`` in JPY),
each SKU once per order, *assigned* ISO 3166 country and *active* ISO 4217 currency codes (the schema only has
``^[A-Z]{2}$`` / ``^[A-Z]{3}$``), email syntax as ``email_validator`` sees it, and an ``Idempotency-Key`` of 1-255
printable ASCII characters (documented only in the header's description). ``object_level_authorization`` is left
out as the API has no identities (the only security scheme is the sidecar's token), ``use_after_free`` as it has no
DELETE.

Every operation is tested, the sidecar's own too (``GET /dapr/subscribe``, ``POST /events/fulfillment-events``):
with the fakes they reach no Dapr, and the document promises their answers as much as the others'. Requests to them
carry the sidecar's token (``CONFIG["auth"]``), so they get past it. The delivery endpoint reads
its CloudEvent from the raw body and documents no request body, so generated deliveries are all DROPped (200): that
endpoint gets little more than a check of its answer's shape here (test_order_api_events.py covers its behaviour).

The app is conftest.py's: the real ``create_app(Settings())`` on the in-memory fakes, fresh for every test (each
operation of ``test_every_operation_answers_as_documented`` is one test, whose examples share one app, so state piles
up as it would in production: orders created, Idempotency-Keys remembered). Schemathesis' ASGI client runs the
app's lifespan, which would build a ``DaprClient`` and wait for a sidecar; ``InProcess`` answers the lifespan itself,
as httpx's ASGITransport in conftest.py never sends one.

Runs are reproducible: Hypothesis is derandomized and keeps no example database, and schemathesis' own seed is fixed.
A failure prints a ``curl`` reproduction (``http://testserver`` stands for the app) with nothing masked: schemathesis
would otherwise hide the ``Idempotency-Key`` header as a secret.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from order_contracts.events import FulfillmentShipped
from order_service.config import Settings
from order_service.handlers import OrderHandlers
from order_service.main import MAX_BODY_BYTES, create_app
from order_service_fakes import SIDECAR_TOKEN, FakeReadiness
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHECKED = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ensure_resource_availability",
    "ignored_auth",
)

CONFIG: dict[str, Any] = {
    "seed": 20_240_601,
    "output": {"sanitization": {"enabled": False}},
    # The sidecar's endpoints require its token (security scheme DaprApiToken): requests carry the right one, and
    # ignored_auth checks that, without it or with a wrong one, they are refused.
    "auth": {"openapi": {"DaprApiToken": {"api_key": SIDECAR_TOKEN}}},
    "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKED}},  # these and no other
}

EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    # The app fixture is deliberately shared by all examples of an operation (see the module docstring).
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

WORKFLOWS = settings(max_examples=50, stateful_step_count=10, deadline=None, derandomize=True, database=None)


class InProcess:
    """Serves ``app`` without its lifespan, and notes every answer as (method, path, status)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answers: list[tuple[str, str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Startup and shutdown succeed at once: there is nothing to build, the use cases are conftest.py's.
            while True:
                message = await receive()
                await send({"type": f"{message['type']}.complete"})
                if message["type"] == "lifespan.shutdown":
                    return

        async def noting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.answers.append((scope["method"], scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting_send)


def load_schema(app: InProcess) -> OpenApiSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG))


# Parametrizing needs the document at import time: it is read from an app of its own (the document does not depend on
# the fakes), but every request goes to the test's `app`. This one has no use cases: a request reaching it would 500.
schema = load_schema(InProcess(create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN))))


@pytest.fixture
def served(app: FastAPI) -> InProcess:
    return InProcess(app)


@schema.parametrize()
@EXAMPLES
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any], served: InProcess) -> None:
    case.call_and_validate(app=served)


def route(path: str) -> str:
    if path.startswith("/orders/"):
        return "/orders/{order_id}/cancel" if path.endswith("/cancel") else "/orders/{order_id}"
    return path


def test_order_workflows_answer_as_documented(served: InProcess) -> None:
    """Chains of calls, so that existing orders are read and cancelled, not only unknown ones (404).

    Schemathesis infers the links from the document: POST /orders 201 -> GET /orders/{order_id} and
    POST /orders/{order_id}/cancel with the order's id, and on from those.
    """
    load_schema(served).as_state_machine().run(settings=WORKFLOWS)

    # Not vacuous: the run did check answers about existing orders.
    reached = {(method, route(path), status) for method, path, status in served.answers}
    assert {
        ("POST", "/orders", 201),
        ("GET", "/orders/{order_id}", 200),
        ("POST", "/orders/{order_id}/cancel", 200),
    } <= reached, sorted(reached)


# Answers that generated requests cannot reach, each sent once and checked by the same checks.


def call_and_validate(served: InProcess, method: str, path: str, **request: Any) -> schemathesis.Response:
    return schema[path][method].Case(**request).call_and_validate(app=served)


def test_not_ready_answers_as_documented(served: InProcess, readiness: FakeReadiness) -> None:
    readiness.ready = False

    # A 503 is the documented answer here, so not_a_server_error (any 5xx fails) does not apply.
    response = schema["/readyz"]["GET"].Case().call_and_validate(app=served, excluded_checks=[not_a_server_error])

    assert response.status_code == 503


def test_an_idempotency_key_reused_with_another_body_answers_as_documented(
    served: InProcess, order_body: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": "key-1"}
    assert call_and_validate(served, "POST", "/orders", body=order_body, headers=key).status_code == 201
    order_body["items"][0]["quantity"] = 3

    assert call_and_validate(served, "POST", "/orders", body=order_body, headers=key).status_code == 422


def test_cancelling_a_shipped_order_answers_as_documented(
    served: InProcess, handlers: OrderHandlers, order_body: dict[str, Any]
) -> None:
    order_id: str = call_and_validate(served, "POST", "/orders", body=order_body).json()["id"]
    shipped = FulfillmentShipped(
        order_id=order_id,
        carrier="acme",
        tracking_number="TRK-1",
        shipment_id="shp-1",
        shipped_at=datetime.now(UTC),
        attempts=1,
    )
    assert asyncio.run(handlers.fold_event(shipped, event_id="shipped-1"))

    cancel = call_and_validate(served, "POST", "/orders/{order_id}/cancel", path_parameters={"order_id": order_id})

    assert cancel.status_code == 409


@pytest.mark.parametrize(("method", "path"), [("GET", "/dapr/subscribe"), ("POST", "/events/fulfillment-events")])
def test_a_sidecar_call_with_a_wrong_token_answers_as_documented(served: InProcess, method: str, path: str) -> None:
    case = schema[path][method].Case(headers={"dapr-api-token": "not-the-sidecar"})

    # 401 is the documented answer; ignored_auth only applies to answers that succeeded.
    assert case.call_and_validate(app=served).status_code == 401


def test_a_body_over_the_limit_answers_as_documented(served: InProcess, order_body: dict[str, Any]) -> None:
    order_body["customer"]["name"] = "x" * MAX_BODY_BYTES

    assert call_and_validate(served, "POST", "/orders", body=order_body).status_code == 413
