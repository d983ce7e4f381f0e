"""Every error this app answers is RFC 9457 `application/problem+json` (routes raise HTTPException)."""

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"


async def _http_exception_as_problem(_: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = HTTPStatus(error.status_code)
    body = {"type": "about:blank", "title": status.phrase, "status": status.value, "detail": str(error.detail)}
    return JSONResponse(body, status_code=status.value, media_type=PROBLEM_MEDIA_TYPE, headers=error.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception_as_problem)
