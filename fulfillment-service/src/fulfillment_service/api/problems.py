"""Every error this app answers is RFC 9457 `application/problem+json`: routes raise HTTPException, and a request
FastAPI refuses (a path id outside the id format) is a 422 naming what it refused."""

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"


async def _http_exception_as_problem(_: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = HTTPStatus(error.status_code)
    body = {"type": "about:blank", "title": status.phrase, "status": status.value, "detail": str(error.detail)}
    return JSONResponse(body, status_code=status.value, media_type=PROBLEM_MEDIA_TYPE, headers=error.headers)


async def _validation_error_as_problem(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    refused = ", ".join(".".join(str(part) for part in failure["loc"]) for failure in error.errors())
    status = HTTPStatus.UNPROCESSABLE_ENTITY
    body = {"type": "about:blank", "title": status.phrase, "status": status.value, "detail": f"refused: {refused}"}
    return JSONResponse(body, status_code=status.value, media_type=PROBLEM_MEDIA_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception_as_problem)
    app.add_exception_handler(RequestValidationError, _validation_error_as_problem)
