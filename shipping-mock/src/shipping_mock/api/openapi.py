"""What ``/openapi.json`` says beyond what FastAPI derives from the routes, so that it documents what the mock answers.

* ``POST /shipments`` reads its body itself (the fault dice and the key check come before the body, see
  ``api/carrier.py``), so FastAPI knows neither the body nor that ``Idempotency-Key`` is required: the document
  gets the ``ShipmentRequest`` body and the header as required, 1 to 255 characters (a missing or empty one is a
  400 problem).
* Every error is a problem (``api/problems.py``): each ``application/problem+json`` answer gets the ``Problem``
  schema, and FastAPI's automatic 422 (``application/json``, ``HTTPValidationError``) becomes the 422 problem the
  validation handler really answers.
* A body over the limit (413) or not JSON (415) is refused before it is read (``service_runtime.body_limits``): the
  operations that take a body document both.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shipping_mock.api.problems import PROBLEM_CONTENT_TYPE, Problem
from shipping_mock.models import ShipmentRequest

_SCHEMAS = "#/components/schemas/"
_GENERIC_422 = {"$ref": f"{_SCHEMAS}HTTPValidationError"}
_IDEMPOTENCY_KEY_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 255}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"{_SCHEMAS}Problem"}}}}


BODY_REFUSALS: dict[str, dict[str, Any]] = {
    "413": _problem("Content Too Large: the body exceeds the mock's limit (256 KiB)."),
    "415": _problem("Unsupported Media Type: the body must be application/json."),
}


def _component_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=_SCHEMAS + "{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


def _document_create_shipment(operation: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"{_SCHEMAS}{ShipmentRequest.__name__}"}}},
    }
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key":
            parameter["required"] = True
            parameter["schema"] = dict(_IDEMPOTENCY_KEY_SCHEMA)


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """Amend FastAPI's document in place (and return it)."""
    components = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _component_schemas(Problem, ShipmentRequest).items():
        components.setdefault(name, schema)
    _document_create_shipment(openapi["paths"]["/shipments"]["post"])
    for item in openapi["paths"].values():
        for operation in item.values():
            responses: dict[str, Any] = operation["responses"]
            if "requestBody" in operation:
                for status, refusal in BODY_REFUSALS.items():
                    responses.setdefault(status, json.loads(json.dumps(refusal)))
            invalid = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
            if invalid == _GENERIC_422:
                responses["422"] = _problem("Invalid request: `errors` lists what was refused.")
            for response in responses.values():
                problem = response.get("content", {}).get(PROBLEM_CONTENT_TYPE)
                if problem is not None and not problem.get("schema"):
                    problem["schema"] = {"$ref": f"{_SCHEMAS}Problem"}
    if "HTTPValidationError" not in json.dumps(openapi["paths"]):
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
    return openapi


def install_openapi_documentation(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
