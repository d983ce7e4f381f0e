"""Domain and use-case errors, answered as RFC 9457 problems."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from order_service.api.problems import Violation, problem_response
from order_service.domain import OrderNotCancellableError, OrderNotFoundError
from order_service.handlers import IdempotencyKeyReusedError, RequestInFlightError


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return problem_response(404, "Not Found", str(error))


async def _not_cancellable(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OrderNotCancellableError)
    return problem_response(409, "Conflict", str(error), order_status=error.status.value)


async def _key_reused(request: Request, error: Exception) -> JSONResponse:
    message = "This Idempotency-Key was already used with a different request body."
    return problem_response(
        422,
        "Unprocessable Content",
        message,
        errors=[Violation(pointer=None, parameter="Idempotency-Key", message=message).model_dump()],
    )


async def _in_flight(request: Request, error: Exception) -> JSONResponse:
    return problem_response(
        409,
        "Conflict",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": str(RequestInFlightError.retry_after_seconds)},
    )


def install_domain_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(OrderNotFoundError, _not_found)
    app.add_exception_handler(OrderNotCancellableError, _not_cancellable)
    app.add_exception_handler(IdempotencyKeyReusedError, _key_reused)
    app.add_exception_handler(RequestInFlightError, _in_flight)
