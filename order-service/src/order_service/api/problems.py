"""RFC 9457 problem details: every 4xx/5xx answer of the service is ``application/problem+json``.

* :func:`install_problem_handlers` registers the exception handlers (validation 400/415/422, framework errors such
  as 404/405, :class:`ProblemError`, and any unhandled exception as a 500 that leaks nothing) and documents the
  problem schemas in ``/openapi.json``.
* :func:`problem_response` builds a problem answer; :class:`ProblemError` is the exception routes raise for one.
* :data:`PROBLEM_RESPONSES` holds the OpenAPI ``responses=`` entries for routes.
* Body size (413) and content type (415) are enforced before FastAPI reads a body (``service_runtime.body_limits``).

Validation errors are reported as ``errors: [{"pointer": "/items/0/quantity", "message": "..."}]`` where the pointer
is an RFC 6901 JSON Pointer into the request body: at the member itself for a wrong or unknown member, and where the
member should be for a missing one. Pydantic's internal location parts (union member tags such as ``decimal`` or
``function-after[...]``) never reach the pointer. The ``type`` of every problem is ``about:blank``, so ``title`` is
the RFC 9110 reason phrase of the status and the specifics are in ``detail``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "Problem",
    "ProblemError",
    "ValidationProblem",
    "Violation",
    "escape_pointer_token",
    "install_problem_handlers",
    "json_pointer",
    "problem_response",
    "status_title",
    "violations_from_validation_error",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"


# --- the problem documents ------------------------------------------------------------------------------------------


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Order 42 does not exist."}
            ]
        },
    )

    type: str = Field(
        default="about:blank",
        description='A URI reference identifying the problem type; "about:blank" means "see the status code".',
        json_schema_extra={"format": "uri-reference"},
    )
    title: str = Field(description="A short, human-readable summary of the problem type.")
    status: int = Field(ge=100, le=599, description="The HTTP status code of this response.")
    detail: str = Field(description="A human-readable explanation specific to this occurrence of the problem.")
    instance: str | None = Field(
        default=None,
        description="A URI reference identifying this occurrence (the request path).",
        json_schema_extra={"format": "uri-reference"},
    )


class Violation(BaseModel):
    """One reason why a request was refused."""

    model_config = ConfigDict(frozen=True)

    pointer: str | None = Field(
        default=None,
        description='RFC 6901 JSON Pointer to the offending member of the request body ("" is the whole body). '
        "For a missing member it points where the member should be.",
        examples=["/items/0/quantity"],
    )
    parameter: str | None = Field(
        default=None,
        description="The offending path, query, header or cookie parameter, for errors outside the body.",
        examples=["order_id"],
    )
    message: str = Field(description="What is wrong, for humans.", examples=["Must be a JSON integer"])


class ValidationProblem(Problem):
    """A problem details object for a request that failed validation, listing every violation."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "The request is invalid: 1 violation, listed in errors.",
                    "errors": [{"pointer": "/items/0/quantity", "message": "Must be a JSON integer"}],
                }
            ]
        },
    )

    errors: list[Violation] = Field(description="Every violation found, in the order of the request.")


# RFC 9110 reason phrases that differ from Python 3.11's http.HTTPStatus.
_RFC9110_TITLES: Final = {
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}


def _standard_phrase(status: int) -> str | None:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return None


def status_title(status: int) -> str:
    """The RFC 9110 reason phrase of ``status`` (the ``title`` to use with type ``about:blank``)."""
    phrase = _RFC9110_TITLES.get(status) or _standard_phrase(status)
    if phrase is not None:
        return phrase
    return "Client Error" if 400 <= status < 500 else "Server Error" if status >= 500 else "Unknown Status"


def problem_response(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    *,
    type_uri: str = "about:blank",
    instance: str | None = None,
    **extra: Any,
) -> JSONResponse:
    """An ``application/problem+json`` response. ``extra`` become extension members (e.g. ``errors=[...]``)."""
    problem = Problem(type=type_uri, title=title, status=status, detail=detail, instance=instance, **extra)
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


class ProblemError(Exception):
    """Raise to answer with a problem; the handler registered by :func:`install_problem_handlers` renders it."""

    def __init__(
        self, status: int, title: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers
        self.extra = extra


def _schema_ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem_doc(description: str, model: type[Problem] = Problem) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": _schema_ref(model)}}}


PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem_doc("Bad Request: the body is not well-formed JSON, or is missing."),
    401: _problem_doc("Unauthorized: the credentials this endpoint requires are missing or wrong."),
    404: _problem_doc("Not Found: no such resource."),
    405: _problem_doc("Method Not Allowed."),
    409: _problem_doc("Conflict: the request conflicts with the current state of the resource."),
    413: _problem_doc("Content Too Large: the body exceeds 64 KiB."),
    415: _problem_doc("Unsupported Media Type: the body must be application/json."),
    422: _problem_doc("Unprocessable Content: the body is JSON but violates the schema.", ValidationProblem),
    500: _problem_doc("Internal Server Error."),
    503: _problem_doc("Service Unavailable: a dependency is unavailable; retry later."),
}
"""OpenAPI ``responses=`` entries, e.g. ``responses={c: PROBLEM_RESPONSES[c] for c in (400, 413, 415, 422)}``.

They reference ``#/components/schemas/Problem`` / ``ValidationProblem``, which :func:`install_problem_handlers`
adds to the generated document."""


# --- JSON pointers and violations ------------------------------------------------------------------------------------


class _NoBody:
    """Marker: the request body is not known, so pointers are derived from the error location alone."""


_NO_BODY: Final = _NoBody()

# Location parts pydantic adds for schema internals rather than data: "function-after[check(), str]",
# "is-instance[Foo]", "list[int]", "json-or-python[...]", "lax-or-strict[...]", "literal['a']", "[key]", ...
_BRACKETED_TAG = re.compile(r"^[a-z][a-z0-9_-]*\[.*\]$|^\[key\]$", re.DOTALL)
# Union member tags. Only consulted when the body is unknown, as they could also be member names.
_BARE_TAGS: Final = frozenset(
    {
        "bool", "bytes", "date", "datetime", "decimal", "dict", "float", "int", "list", "none", "str", "time",
        "timedelta", "url", "uuid", "constrained-bytes", "constrained-decimal", "constrained-float",
        "constrained-int", "constrained-str",
    }
)  # fmt: skip


def escape_pointer_token(token: str) -> str:
    """Escape one reference token for an RFC 6901 JSON Pointer: ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return token.replace("~", "~0").replace("/", "~1")


def json_pointer(tokens: Iterable[str | int]) -> str:
    """An RFC 6901 JSON Pointer from reference tokens: ``("items", 0, "sku")`` -> ``"/items/0/sku"``."""
    return "".join("/" + escape_pointer_token(str(token)) for token in tokens)


def _is_internal(part: str | int, *, body_known: bool) -> bool:
    if not isinstance(part, str):
        return False
    return bool(_BRACKETED_TAG.match(part)) or (not body_known and part in _BARE_TAGS)


def _body_pointer(loc: Sequence[str | int], error_type: str, body: Any) -> str:
    """The JSON Pointer of an error location relative to the body, skipping pydantic's internal location parts.

    With the body known, the location is walked through the data: only parts that exist there (plus the name of a
    missing member) make it into the pointer. Otherwise internal parts are recognised by their shape.
    """
    last = len(loc) - 1
    if isinstance(body, _NoBody):
        # The last part of a missing or unknown member is always that member's name.
        keep_last = error_type in {"missing", "extra_forbidden"}
        return json_pointer(
            part
            for index, part in enumerate(loc)
            if (keep_last and index == last) or not _is_internal(part, body_known=False)
        )
    tokens: list[str | int] = []
    node: Any = body
    for index, part in enumerate(loc):
        if isinstance(node, Mapping) and isinstance(part, str):
            if part in node:
                tokens.append(part)
                node = node[part]
            elif index == last and error_type == "missing":
                tokens.append(part)
        elif isinstance(node, (list, tuple)) and isinstance(part, int) and 0 <= part < len(node):
            tokens.append(part)
            node = node[part]
        # Any other part is not in the data: an internal one (a union member, a validator function, ...).
    return json_pointer(tokens)


_FRIENDLY_MESSAGES: Final = {
    "missing": "Required member is missing",
    "extra_forbidden": "Unknown member; it is not allowed here",
    "int_type": "Must be a JSON integer",
    "int_parsing": "Must be a JSON integer",
    "int_from_float": "Must be a JSON integer",
    "string_type": "Must be a string",
    "bool_type": "Must be true or false",
    "model_type": "Must be a JSON object",
    "model_attributes_type": "Must be a JSON object",
    "dict_type": "Must be a JSON object",
    "list_type": "Must be a JSON array",
    "decimal_type": 'Must be a decimal number, as a string such as "12.50" or a JSON number',
    "decimal_parsing": 'Must be a decimal number, as a string such as "12.50" or a JSON number',
    "finite_number": "Must be a finite number",
}


# Constraint messages, worded without pydantic's reprs (it says "less than or equal to Decimal('1000000')").
_CONSTRAINT_MESSAGES: Final = {
    "greater_than": "Must be greater than {gt}",
    "greater_than_equal": "Must be at least {ge}",
    "less_than": "Must be less than {lt}",
    "less_than_equal": "Must be at most {le}",
    "string_too_short": "Must be at least {min_length} characters long",
    "string_too_long": "Must be at most {max_length} characters long",
    "too_short": "Must contain at least {min_length} entries",
    "too_long": "Must contain at most {max_length} entries",
}


_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")


def _plain(value: Any) -> str:
    """A constraint bound as text; FastAPI hands over reprs such as "Decimal('1000000')"."""
    text = str(value)
    match = _DECIMAL_REPR.fullmatch(text)
    return match.group(1) if match else text


def _message(error: Mapping[str, Any]) -> str:
    error_type = str(error.get("type", ""))
    if error_type in _FRIENDLY_MESSAGES:
        return _FRIENDLY_MESSAGES[error_type]
    context = error.get("ctx") or {}
    if error_type == "string_too_short" and context.get("min_length") == 1:
        return "Must not be empty"
    if error_type == "too_short" and context.get("min_length") == 1:
        return "Must contain at least one entry"
    if error_type in _CONSTRAINT_MESSAGES:
        try:
            return _CONSTRAINT_MESSAGES[error_type].format_map({key: _plain(value) for key, value in context.items()})
        except KeyError:
            pass  # an unexpected context: fall back to pydantic's message
    message = str(error.get("msg", "Invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _violation(error: Mapping[str, Any], loc: Sequence[str | int], body: Any) -> Violation:
    return Violation(pointer=_body_pointer(loc, str(error.get("type", "")), body), message=_message(error))


def violations_from_validation_error(error: ValidationError, body: Any = _NO_BODY) -> list[Violation]:
    """Violations from a pydantic error whose locations are relative to the request body.

    Pass the decoded body (``json.loads(raw)``) when it is available: pointers are then exact even for member
    names that look like pydantic's internal location parts.
    """
    return [_violation(item, item["loc"], body) for item in error.errors(include_url=False)]


_PARAMETER_SOURCES: Final = frozenset({"path", "query", "header", "cookie"})


def _request_violations(exc: RequestValidationError) -> list[Violation]:
    body = _NO_BODY if isinstance(exc.body, (bytes, bytearray, str)) else exc.body
    violations = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if loc and loc[0] in _PARAMETER_SOURCES:
            name = ".".join(str(part) for part in loc[1:] if not _is_internal(part, body_known=False))
            violations.append(Violation(parameter=name, message=_message(error)))
        else:
            inner = loc[1:] if loc and loc[0] == "body" else loc
            violations.append(_violation(error, inner, body))
    return violations


# --- handlers -------------------------------------------------------------------------------------------------------


def _instance(request: Request) -> str:
    """The request's path as a URI reference: Starlette decodes it, so encode it again (spaces, non-ASCII)."""
    return quote(request.url.path, safe="/")


async def _handle_problem_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        exc.status, exc.title, exc.detail, headers=exc.headers, instance=_instance(request), **exc.extra
    )


def _only_body_loc(error: Mapping[str, Any]) -> bool:
    return tuple(error.get("loc", ())) == ("body",)


async def _handle_request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    instance = _instance(request)
    malformed = next((error for error in errors if error.get("type") == "json_invalid"), None)
    if malformed is not None:
        reason = (malformed.get("ctx") or {}).get("error") or malformed.get("msg") or "invalid JSON"
        return problem_response(400, status_title(400), f"Malformed JSON: {reason}.", instance=instance)
    if any(_only_body_loc(error) and error.get("type") == "missing" for error in errors):
        return problem_response(
            400, status_title(400), "The request body is missing; a JSON object is required.", instance=instance
        )
    if isinstance(exc.body, (bytes, bytearray)) and any(_only_body_loc(error) for error in errors):
        # FastAPI only leaves the body undecoded when it was not sent as JSON.
        return problem_response(
            415, status_title(415), "The request body must be application/json (UTF-8).", instance=instance
        )
    violations = _request_violations(exc)
    count = len(violations)
    return problem_response(
        422,
        status_title(422),
        f"The request is invalid: {count} violation{'s' if count != 1 else ''}, listed in errors.",
        instance=instance,
        errors=[violation.model_dump(exclude_none=True) for violation in violations],
    )


_DEFAULT_DETAILS: Final = {
    404: "No resource exists at this URL.",
    405: "The {method} method is not allowed for this resource.",
}


async def _handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    if status < 400:  # not an error (e.g. 304): keep the framework's answer
        return await http_exception_handler(request, exc)
    title = status_title(status)
    detail = exc.detail if isinstance(exc.detail, str) else ""
    if not detail or detail == _standard_phrase(status):
        detail = _DEFAULT_DETAILS.get(status, f"{title}.").format(method=request.method)
    return problem_response(status, title, detail, headers=exc.headers, instance=_instance(request))


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error answering %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, status_title(500), "An unexpected error occurred; it has been logged.", instance=_instance(request)
    )


# --- OpenAPI --------------------------------------------------------------------------------------------------------


def _problem_component_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(Problem, "serialization"), (ValidationProblem, "serialization")],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _document_problems(document: dict[str, Any]) -> None:
    """Add the problem schemas, and make FastAPI's automatic 422 responses say what the handlers really answer."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _problem_component_schemas().items():
        components.setdefault(name, schema)
    generic_422 = {"$ref": "#/components/schemas/HTTPValidationError"}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            response = responses.get("422")
            if response and response.get("content", {}).get("application/json", {}).get("schema") == generic_422:
                responses["422"] = json.loads(json.dumps(PROBLEM_RESPONSES[422]))
    if "HTTPValidationError" not in json.dumps(document.get("paths", {})):
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)


def _install_openapi_documentation(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_problem_handlers(app: FastAPI) -> None:
    """Make every 4xx/5xx answer of ``app`` an RFC 9457 problem, and document the problem schemas in OpenAPI.

    * :class:`RequestValidationError` -> 400 (malformed JSON, missing body), 415 (body not sent as JSON), or 422
      with ``errors``;
    * Starlette/FastAPI ``HTTPException`` (unknown route 404, 405 with its ``Allow`` header, ...) -> same status;
    * :class:`ProblemError` -> its status, title and detail;
    * any other exception -> 500 without internals (logged). Starlette still re-raises it after answering, so
      servers log it too, and ``TestClient`` needs ``raise_server_exceptions=False`` to see the response.
    """
    app.add_exception_handler(RequestValidationError, _handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(ProblemError, _handle_problem_error)
    app.add_exception_handler(Exception, _handle_unexpected)
    _install_openapi_documentation(app)
