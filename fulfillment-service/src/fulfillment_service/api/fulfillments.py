"""Read-only view of fulfillment's own record of an order (for operators and tests): where its shipping stands."""

from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel
from service_runtime.path_ids import OrderIdPath

from fulfillment_service.api.deps import FulfillmentHandlersDep
from fulfillment_service.api.problems import PROBLEM_RESPONSES
from fulfillment_service.domain import FulfillmentStatus, Shipment

router = APIRouter(prefix="/fulfillments", tags=["fulfillments"])


class FulfillmentView(BaseModel):
    order_id: str
    status: FulfillmentStatus
    picked_up_at: datetime
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    shipment: Shipment | None
    void_attempts: int
    """Attempts to void the shipment of a cancelled (or given up) order, refused or failed ones included: while the
    status is `voiding`, the shipment is live and fulfillment keeps asking."""
    leased_to: str | None
    events_to_publish: list[str]
    """Ids of events recorded but not yet confirmed published."""


@router.get(
    "/{order_id}",
    summary="Fulfillment's record of an order",
    responses={404: {**PROBLEM_RESPONSES[404], "description": "Fulfillment never picked this order up."}},
)
async def get_fulfillment(order_id: OrderIdPath, handlers: FulfillmentHandlersDep) -> FulfillmentView:
    stored = await handlers.store.get(order_id)
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"fulfillment never picked order {order_id} up")
    record = stored.record
    return FulfillmentView(
        order_id=record.order_id,
        status=record.status,
        picked_up_at=record.picked_up_at,
        attempts=record.attempts,
        last_error=record.last_error,
        next_attempt_at=record.next_attempt_at,
        shipment=record.shipment,
        void_attempts=record.void_attempts,
        leased_to=record.lease.owner if record.lease else None,
        events_to_publish=[event.event_id() for event in record.owed_events],
    )
