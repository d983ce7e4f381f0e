"""Every error this app answers is RFC 9457 `application/problem+json`: routes raise HTTPException, and a request
FastAPI refuses (a path id outside the id format) is a 422 naming what it refused.

`/openapi.json` says so: routes document their errors with `PROBLEM_RESPONSES`, and `install_problem_handlers` turns
FastAPI's automatic 422 (`application/json`, `HTTPValidationError`) into the problem the handler really answers."""

import json
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description='"about:blank": the status code says what the problem is.')
    title: str = Field(description="The status code's reason phrase.")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What was wrong with this request, for humans.")


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{Problem.__name__}"}}},
    }


PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem_doc("Bad Request: the body is not what this endpoint reads."),
    401: _problem_doc("Unauthorized: the credentials this endpoint requires are missing or wrong."),
    404: _problem_doc("Not Found."),
    409: _problem_doc("Conflict: the request conflicts with the current state; send it again later."),
    413: _problem_doc("Content Too Large: the body exceeds this endpoint's limit."),
    415: _problem_doc("Unsupported Media Type: the body must be application/json."),
    422: _problem_doc("Unprocessable Content: the request is well-formed but not valid."),
}
"""OpenAPI `responses=` entries, e.g. `responses={c: PROBLEM_RESPONSES[c] for c in (401, 404)}`."""


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


def _document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Add the Problem schema, and make FastAPI's automatic 422 responses say what the handler really answers."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    _, top = models_json_schema([(Problem, "serialization")], ref_template="#/components/schemas/{model}")
    for name, schema in top.get("$defs", {}).items():
        components.setdefault(name, schema)
    generic_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            response = responses.get("422")
            if response and response.get("content", {}).get("application/json", {}).get("schema") == generic_422:
                responses["422"] = json.loads(json.dumps(PROBLEM_RESPONSES[422]))
    if "HTTPValidationError" not in json.dumps(document.get("paths", {})):
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
    return document


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_exception_as_problem)
    app.add_exception_handler(RequestValidationError, _validation_error_as_problem)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
