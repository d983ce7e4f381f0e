"""Schemathesis against the three live apps on the real stack: every answer is one their /openapi.json documents.

Each app's document is read over HTTP from the running app (``schemathesis.openapi.from_url``) and schemathesis'
own engine, the one ``st run`` drives, sends its generated requests straight to the app's port (8000, 8001, 8002),
not through a sidecar: its phases one after the other, the documented examples, boundary cases ("coverage":
each constraint just inside and just outside, missing required headers, methods the path does not serve), random
schema-valid and schema-invalid data ("fuzzing", ``CASES_PER_SERVICE`` cases at least, see ``budget``) and chains
of calls that follow the links it infers (create an order, then read and cancel it). Every answer is checked
(``CHECKED``):

* ``not_a_server_error``: no 5xx, whatever the request;
* ``status_code_conformance``, ``content_type_conformance``, ``response_schema_conformance``,
  ``response_headers_conformance``: the status is one the operation documents, with the documented media type
  (``application/problem+json`` for errors), a body valid against the documented schema, and the documented headers;
* ``negative_data_rejection``: a request the document forbids is refused with a 4xx;
* ``positive_data_acceptance``: a request the document allows is not refused as invalid (400/422), except where
  ``UNCHECKED`` says why not;
* ``missing_required_header``, ``unsupported_method``, ``allow_header_conformance``: a required header is required,
  a method the path does not serve is a 405 whose ``Allow`` lists exactly the documented methods;
* ``ensure_resource_availability``: what a 201 created can be read;
* ``ignored_auth``: an operation of the security scheme ``DaprApiToken`` refuses a request without the token or
  with a wrong one (401).

Left out: ``use_after_free`` (nothing here is deleted by id), ``object_level_authorization`` (the APIs have no
identities: the only credential is the sidecar's token) and ``max_response_time`` (tests assert behaviour, not
timings).

What is sent, and what is not:

* order-service and fulfillment-service: every operation. Of the sidecar-only ones, ``GET /dapr/subscribe`` gets
  the stack's APP_API_TOKEN as the sidecar sends it (``AppToken``; ``ignored_auth`` checks the refusals without it
  and with a wrong one). ``POST /events/...`` gets the tokens schemathesis makes up, so every generated delivery
  must be refused (401) before it is read: with the token, a generated batch would be folded into real orders,
  picked up for shipping or dead-lettered onto the real topics. What the endpoints do with a delivery is the other
  e2e tests' (test_sidecar_only_endpoints.py, test_dead_letters.py and the event tests). Fulfillment's
  ``POST /webhooks/carrier`` is fuzzed with the signatures schemathesis makes up, all refused (401): a valid one is
  an HMAC over the exact body bytes and the time. ``test_signed_carrier_reports_answer_as_documented`` sends
  correctly signed reports of each kind once (delivered, again, unknown order, not a report) and checks their
  answers with the same checks.
* shipping-mock: every operation but ``PUT /admin/faults`` (the faults it would set would break the stack for
  the tests that follow: the carrier down, answers held 30 s) and ``DELETE /admin/shipments`` (it would forget the
  shipments, keys and delivery reports of orders still in flight). The faults are reset before and after the run.
  The shipments it creates for made-up orders would be reported delivered to fulfillment, refused (404) and
  retried until the end of the stack: they are voided after the run (``void_made_up_shipments``).

Orders the fuzz creates stay (and ship, and are delivered, as any order); that is what the API is for.

Runs are reproducible: generation is deterministic (Hypothesis derandomized, no example database), schemathesis'
seed is fixed, its cache across runs is off and no value is taken from earlier answers, so the same document
generates the same requests. (What the apps answer can still depend on the stack's state: ids a 201 makes.)
A failure prints schemathesis' report with a ``curl`` reproduction, nothing masked.
"""

import hashlib
import hmac
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from schemathesis.engine import events
from schemathesis.engine.statistic import Statistic
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.support.fulfillment import FULFILLMENT_URL, created, stack_secret
from tests.support.orders import wait_for_status

ORDER_URL = "http://127.0.0.1:8000"
CARRIER_URL = "http://127.0.0.1:8002"

CASES_PER_SERVICE = 1_000
"""The fewest generated cases each app gets (all phases together; the run fails if it got fewer)."""
SEED = 20_261_206

CHECKED = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ensure_resource_availability",
    "ignored_auth",
)


@dataclass(frozen=True)
class LiveApp:
    name: str
    base_url: str
    app_token_paths: tuple[str, ...] = ()
    """Where requests carry the sidecar's APP_API_TOKEN (see the module docstring)."""
    excluded: tuple[tuple[str, str], ...] = ()
    """(method, path) of operations not sent at all (see the module docstring)."""
    unchecked: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """Checks left out for one operation, each with its reason in a comment."""


FULFILLMENT = LiveApp("fulfillment-service", FULFILLMENT_URL, app_token_paths=("/dapr/subscribe",))
APPS = [
    LiveApp(
        "order-service",
        ORDER_URL,
        app_token_paths=("/dapr/subscribe",),
        unchecked={
            # The order API enforces rules its document states in prose but JSON Schema cannot express, and refuses
            # schema-valid orders with a documented 422 problem: each SKU once per order, no more decimals in
            # unit_price than the currency's ISO 4217 minor unit ("12.50" in JPY), an *assigned* country and an
            # *active* currency (the schema has ^[A-Z]{2}$ / ^[A-Z]{3}$), non-blank names, email syntax as
            # email_validator sees it. (The same reason as in order-service/tests/api/test_order_api_schema_fuzz.py.)
            ("POST", "/orders"): ("positive_data_acceptance",),
        },
    ),
    FULFILLMENT,
    LiveApp("shipping-mock", CARRIER_URL, excluded=(("PUT", "/admin/faults"), ("DELETE", "/admin/shipments"))),
]


def config_of(app: LiveApp, max_examples: int) -> dict[str, Any]:
    no_answers_reused = {"extra-data-sources": {"responses": False}}
    config: dict[str, Any] = {
        "seed": SEED,
        "cache": {"enabled": False},
        "output": {"sanitization": {"enabled": False}},
        "generation": {"deterministic": True, "database": "none", "max-examples": max_examples},
        "phases": {
            "examples": no_answers_reused,
            "coverage": no_answers_reused,
            "fuzzing": {**no_answers_reused, "error-feedback": {"enabled": False}},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKED}},  # these and no other
        "operations": [
            *({"include-method": method, "include-path": path, "enabled": False} for method, path in app.excluded),
            *(
                {
                    "include-method": method,
                    "include-path": path,
                    "checks": {name: {"enabled": False} for name in names},
                }
                for (method, path), names in app.unchecked.items()
            ),
        ],
    }
    return config


class AppToken:
    """The sidecar's credential: daprd sends its APP_API_TOKEN as the `dapr-api-token` header."""

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> str:
        return stack_secret("APP_API_TOKEN")

    def set(self, case: schemathesis.Case[Any], data: str, context: schemathesis.AuthContext) -> None:
        case.headers["dapr-api-token"] = data


def load(app: LiveApp, max_examples: int = 1) -> OpenApiSchema:
    schema = schemathesis.openapi.from_url(
        f"{app.base_url}/openapi.json", config=schemathesis.Config.from_dict(config_of(app, max_examples))
    )
    for path in app.app_token_paths:
        schema.auth().apply_to(path=path)(AppToken)
    return schema


def budget(app: LiveApp) -> int:
    """Fuzzing examples per operation: the operations that take any input share CASES_PER_SERVICE (the others
    have a single request to make, and get it)."""
    document = load(app).raw_schema
    with_input = [
        operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if (method.upper(), path) not in app.excluded and (operation.get("parameters") or operation.get("requestBody"))
    ]
    return math.ceil(CASES_PER_SERVICE / max(len(with_input), 1))


@dataclass
class RunResult:
    cases: int = 0
    cases_by_phase: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, app: LiveApp) -> str:
        phases = ", ".join(f"{phase} {count}" for phase, count in self.cases_by_phase.items())
        return (
            f"[schemathesis] {app.name} ({app.base_url}): {self.cases} cases ({phases}), "
            f"{len(self.failures)} failures, {self.seconds:.1f} s"
        )


def run(app: LiveApp) -> RunResult:
    schema = load(app, budget(app))
    statistic = Statistic()
    result = RunResult()
    started = time.monotonic()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
            phase = event.phase.value
            result.cases_by_phase[phase] = result.cases_by_phase.get(phase, 0) + len(event.recorder.cases)
        elif isinstance(event, events.NonFatalError):
            result.failures.append(f"{event.label}: error\n{event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.EngineFinished) and event.failures:
            statistic.record_run_check_failures(event.failures, label="run")
    result.seconds = time.monotonic() - started
    result.cases = statistic.total_cases
    for label, groups in statistic.failures.items():
        for group in groups.values():
            report = group.format(index=None, curl=group.code_sample, config=schema.config.output)
            result.failures.append(f"{label}\n{report}")
    return result


@pytest.fixture
def carrier_without_faults(stack: object) -> Iterator[None]:
    """The carrier has no faults before the run and none after it, whatever the run did."""
    with httpx.Client(base_url=CARRIER_URL, timeout=10) as carrier:
        carrier.delete("/admin/faults").raise_for_status()
        shipments_before = {shipment["shipment_id"] for shipment in carrier.get("/admin/shipments").json()}
        try:
            yield
        finally:
            carrier.delete("/admin/faults").raise_for_status()
            void_made_up_shipments(carrier, shipments_before)


def void_made_up_shipments(carrier: httpx.Client, shipments_before: set[str]) -> None:
    """Void the shipments created since ``shipments_before`` for orders the order service does not know."""
    with httpx.Client(base_url=ORDER_URL, timeout=10) as orders:
        for shipment in carrier.get("/admin/shipments").json():
            if shipment["shipment_id"] in shipments_before or shipment["status"] != "label_created":
                continue
            if orders.get(f"/orders/{quote(shipment['order_id'], safe='')}").status_code == 200:
                continue  # a real order's, shipped while the run went on
            voided = carrier.post(
                f"/shipments/{quote(shipment['shipment_id'], safe='')}/cancel",
                headers={"Idempotency-Key": f"void-{shipment['shipment_id']}"},
            )
            assert voided.status_code in (200, 409), voided.text  # 409: delivered meanwhile


@pytest.mark.usefixtures("stack", "carrier_without_faults")
@pytest.mark.parametrize("app", APPS, ids=[app.name for app in APPS])
def test_the_live_app_answers_as_its_document_says(app: LiveApp) -> None:
    result = run(app)

    print(result.summary(app))
    assert result.failures == [], "\n\n".join([result.summary(app), *result.failures])
    assert result.cases >= CASES_PER_SERVICE, result.summary(app)


# Answers generated requests cannot reach: correctly signed carrier reports, sent once each, checked the same way.


def signed_report(body: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signed_at = int(time.time())
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Carrier-Signature": f"t={signed_at},v1={digest}"}


def test_signed_carrier_reports_answer_as_documented(order_api: httpx.Client) -> None:
    schema = load(FULFILLMENT)
    operation = schema["/webhooks/carrier"]["POST"]
    secret = stack_secret("CARRIER_WEBHOOK_SECRET")
    order_id = created(order_api)
    shipped = wait_for_status(order_api, order_id, "shipped", timeout=10)
    report = {
        "shipment_id": shipped["fulfillment"]["shipment_id"],
        "order_id": order_id,
        "status": "delivered",
        "delivered_at": "2026-12-06T12:00:00Z",
    }
    answers = {}
    for name, body in {
        "delivered": report,
        "again": report,
        "unknown order": {**report, "order_id": "no-such-order"},
        "not a report": {**report, "status": "lost"},
    }.items():
        raw, headers = signed_report(body, secret)
        case = operation.Case(body=body, headers=headers, media_type="application/json")
        response = case.call_and_validate()
        assert response.request.body == raw, "the body sent is not the one signed"
        answers[name] = response.status_code

    assert answers == {"delivered": 204, "again": 204, "unknown order": 404, "not a report": 422}
