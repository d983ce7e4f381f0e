"""The order resource: create, read."""

from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status
from order_contracts.events import Customer, LineItem

from order_service import reference_data
from order_service.api.deps import OrderHandlersDep
from order_service.api.problems import PROBLEM_RESPONSES
from order_service.api.responses import OrderOut
from order_service.api.schemas import CreateOrderRequest

router = APIRouter(prefix="/orders", tags=["orders"])

OrderId = Annotated[str, Path(min_length=1, max_length=64, description="The order id (a UUIDv7).")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Place an order",
    responses={code: PROBLEM_RESPONSES[code] for code in (400, 413, 415, 422)},
)
async def create_order(
    body: Annotated[CreateOrderRequest, Body()], handlers: OrderHandlersDep, response: Response
) -> OrderOut:
    minor_units = reference_data.minor_units(body.currency)
    order = await handlers.create_order(
        customer=Customer.model_validate(body.customer.model_dump(mode="json")),
        items=[
            LineItem(sku=item.sku, quantity=item.quantity, unit_price=f"{item.unit_price:.{minor_units}f}")
            for item in body.items
        ],
        currency=body.currency,
        minor_units=minor_units,
    )
    response.headers["Location"] = f"/orders/{order.id}"
    return OrderOut.of(order)


@router.get("/{order_id}", summary="Read an order", responses={404: PROBLEM_RESPONSES[404]})
async def get_order(order_id: OrderId, handlers: OrderHandlersDep) -> OrderOut:
    return OrderOut.of(await handlers.get_order(order_id))
