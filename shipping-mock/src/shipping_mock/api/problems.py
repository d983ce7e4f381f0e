"""Errors as RFC 9457 problem details (``application/problem+json``): type, title, status, detail (+ extensions)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shipping_mock.models import Rejection

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://carrier.example/problems/"
RETRY_AFTER_SECONDS = 1
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_CONTENT_TYPE


class Problem(BaseModel):
    """An RFC 9457 problem details object, as every error of the mock is (``/openapi.json`` documents it)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description=f'``{PROBLEM_TYPE_BASE}<kind>``, or "about:blank" (see the status code).')
    title: str
    status: int = Field(ge=400, le=599)
    detail: str


def problem(
    status: int,
    detail: str,
    *,
    problem_type: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """A problem response; ``problem_type`` is the last segment of the type URI (``about:blank`` without one)."""
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_BASE}{problem_type}" if problem_type else "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": int(status),
        "detail": detail,
        **extensions,
    }
    return ProblemResponse(jsonable_encoder(body), status_code=status, headers=headers)


def missing_idempotency_key() -> ProblemResponse:
    return problem(
        HTTPStatus.BAD_REQUEST,
        "The Idempotency-Key header is required to create a shipment (1 to 255 characters).",
        problem_type="missing-idempotency-key",
        title="Idempotency-Key required",
    )


def invalid_request(error: ValidationError) -> ProblemResponse:
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        f"The request body is not a valid shipment request ({error.error_count()} error(s)).",
        problem_type="invalid-request",
        title="Invalid request",
        errors=error.errors(include_url=False, include_context=False),
    )


def address_rejected(rejection: Rejection) -> ProblemResponse:
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        rejection.detail,
        problem_type="address-rejected",
        title="Shipment rejected",
        reason=rejection.reason,
    )


def carrier_down() -> ProblemResponse:
    return problem(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The carrier API is down for maintenance.",
        problem_type="carrier-unavailable",
        title="Carrier unavailable",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def temporary_failure() -> ProblemResponse:
    return problem(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "The carrier could not process the request; nothing was changed. Try again.",
        problem_type="temporary-failure",
        title="Temporary failure",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def shipment_not_found(shipment_id: str) -> ProblemResponse:
    return problem(
        HTTPStatus.NOT_FOUND,
        f"There is no shipment {shipment_id!r}.",
        problem_type="shipment-not-found",
        title="Shipment not found",
    )


def shipment_already_delivered(shipment_id: str) -> ProblemResponse:
    return problem(
        HTTPStatus.CONFLICT,
        f"Shipment {shipment_id!r} is already delivered and can no longer be voided.",
        problem_type="shipment-delivered",
        title="Shipment already delivered",
    )


async def _http_exception_as_problem(request: Request, exc: Exception) -> ProblemResponse:
    if not isinstance(exc, StarletteHTTPException):
        raise TypeError(f"unexpected exception {exc!r}")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).description
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        headers["Allow"] = _allowed_methods(request)
    return problem(exc.status_code, detail, headers=headers or None)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path. Each method of a path is a route of its own, and
    Starlette's 405 names only the methods of the first route whose path matched (``Allow: POST`` for
    ``/shipments``, which also serves GET)."""
    served = [
        method
        for method in _HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in request.app.routes)
    ]
    return ", ".join(served)


async def _validation_error_as_problem(_: Request, exc: Exception) -> ProblemResponse:
    if not isinstance(exc, RequestValidationError):
        raise TypeError(f"unexpected exception {exc!r}")
    return problem(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "The request is not valid.",
        problem_type="invalid-request",
        title="Invalid request",
        errors=exc.errors(),
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make the framework's own errors (404 route, 405, body validation) problem details too."""
    app.add_exception_handler(StarletteHTTPException, _http_exception_as_problem)
    app.add_exception_handler(RequestValidationError, _validation_error_as_problem)
