"""What the order API answers: the order as clients see it (internal bookkeeping left out)."""

from datetime import datetime

from order_contracts.events import Customer, LineItem
from pydantic import BaseModel

from order_service.domain import Cancellation, Fulfillment, Order, OrderStatus, StatusEntry


class OrderOut(BaseModel):
    id: str
    status: OrderStatus
    customer: Customer
    items: list[LineItem]
    currency: str
    total: str
    created_at: datetime
    updated_at: datetime
    fulfillment: Fulfillment | None
    cancellation: Cancellation | None
    history: list[StatusEntry]

    @classmethod
    def of(cls, order: Order) -> "OrderOut":
        return cls.model_validate(order.model_dump(exclude={"applied_event_ids"}))
