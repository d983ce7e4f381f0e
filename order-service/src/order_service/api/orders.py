"""The order resource: create (idempotently, with an Idempotency-Key), read, cancel."""

import hashlib
import json
import re
from typing import Annotated

from fastapi import APIRouter, Body, Header, Request, Response, status
from order_contracts.events import Customer, LineItem
from pydantic import BaseModel, ConfigDict, Field
from service_runtime.path_ids import OrderIdPath

from order_service import reference_data
from order_service.api.deps import OrderHandlersDep
from order_service.api.problems import PROBLEM_RESPONSES, ProblemError
from order_service.api.responses import OrderOut
from order_service.api.schemas import CreateOrderRequest
from order_service.handlers import CreateOrder, IdempotentRequest

router = APIRouter(prefix="/orders", tags=["orders"])

IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_CANCEL_REASON = "cancelled by the customer"


class CancelOrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default=DEFAULT_CANCEL_REASON, min_length=1, max_length=200)


def _fingerprint(parsed_body: object) -> str:
    """The request as parsed JSON, canonically serialised and hashed: key order and spacing do not matter."""
    canonical = json.dumps(parsed_body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order",
    description=(
        "Validates the order, stores it and publishes `order.created.v1`. With an `Idempotency-Key`, repeating the "
        "request (same key, same body) answers 201 with the same order and `Idempotent-Replayed: true`; the same "
        "key with another body is refused (422); while the first request with a key is still in flight, another "
        "waits briefly, then gets 409 with `Retry-After`. Keys are remembered at least 24 h."
    ),
    responses={
        201: {"headers": {"Location": {"description": "/orders/{id}", "schema": {"type": "string"}}}},
        **{code: PROBLEM_RESPONSES[code] for code in (400, 409, 413, 415, 422)},
    },
)
async def create_order(
    body: Annotated[CreateOrderRequest, Body()],
    request: Request,
    handlers: OrderHandlersDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="1-255 printable ASCII characters; makes retries safe. Another key answers 400.",
            json_schema_extra={"minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
        ),
    ] = None,
) -> OrderOut:
    idempotency = None
    if idempotency_key is not None:
        if not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise ProblemError(400, "Bad Request", "Idempotency-Key must be 1-255 printable ASCII characters.")
        idempotency = IdempotentRequest(key=idempotency_key, fingerprint=_fingerprint(await request.json()))
    minor_units = reference_data.minor_units(body.currency)
    created = await handlers.create_order(
        CreateOrder(
            customer=Customer.model_validate(body.customer.model_dump(mode="json")),
            items=[
                LineItem(sku=item.sku, quantity=item.quantity, unit_price=f"{item.unit_price:.{minor_units}f}")
                for item in body.items
            ],
            currency=body.currency,
            minor_units=minor_units,
        ),
        idempotency,
    )
    response.headers["Location"] = f"/orders/{created.order.id}"
    if created.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return OrderOut.of(created.order)


@router.get("/{order_id}", summary="Read an order", responses={404: PROBLEM_RESPONSES[404]})
async def get_order(order_id: OrderIdPath, handlers: OrderHandlersDep) -> OrderOut:
    return OrderOut.of(await handlers.get_order(order_id))


@router.post(
    "/{order_id}/cancel",
    summary="Cancel an order",
    description=(
        "Cancels a `pending` or `processing` order and publishes `order.cancelled.v1`; cancelling a cancelled order "
        "again answers 200. A `shipped`, `delivered` or `failed` order can no longer be cancelled (409)."
    ),
    responses={code: PROBLEM_RESPONSES[code] for code in (400, 404, 409, 413, 415, 422)},
)
async def cancel_order(
    order_id: OrderIdPath, handlers: OrderHandlersDep, body: Annotated[CancelOrderRequest | None, Body()] = None
) -> OrderOut:
    reason = body.reason if body is not None else DEFAULT_CANCEL_REASON
    return OrderOut.of(await handlers.cancel_order(order_id, reason=reason))
