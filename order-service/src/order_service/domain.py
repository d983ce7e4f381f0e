"""The order: its lifecycle, the rules that fold fulfillment progress into it, and its domain errors.

Pure: no FastAPI, no Dapr. Progress may arrive late, twice or out of order (Kafka delivers at least once), so
folding is idempotent per event id and ordered by the rank of a status, not by arrival.
"""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from order_contracts.events import (
    Customer,
    EventData,
    FulfillmentAttemptFailed,
    FulfillmentDelivered,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentStarted,
    FulfillmentVoided,
    FulfillmentVoidRefused,
    LineItem,
)
from pydantic import BaseModel, ConfigDict, Field


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.PROCESSING: 1,
    OrderStatus.SHIPPED: 2,
    OrderStatus.DELIVERED: 3,
    OrderStatus.FAILED: 3,
    OrderStatus.CANCELLED: 3,
}
_FINAL = frozenset({OrderStatus.DELIVERED, OrderStatus.FAILED, OrderStatus.CANCELLED})
_LATE_ENTRIES = {
    OrderStatus.DELIVERED: frozenset({OrderStatus.PROCESSING, OrderStatus.SHIPPED}),
    OrderStatus.FAILED: frozenset({OrderStatus.PROCESSING}),
}
"""The statuses that may still join the history of an order that reached a final status: those on its way there."""


class OrderNotFoundError(Exception):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class OrderNotCancellableError(Exception):
    def __init__(self, order_id: str, status: "OrderStatus") -> None:
        super().__init__(f"order {order_id} is {status} and can no longer be cancelled")
        self.order_id = order_id
        self.status = status


class StatusEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: OrderStatus
    at: datetime


class Fulfillment(BaseModel):
    picked_up_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    """The error of the latest failed attempt; kept once the order ships or fails, as history."""
    next_attempt_at: datetime | None = None
    """When fulfillment tries again after a failed attempt; None once it shipped or gave up."""
    carrier: str | None = None
    tracking_number: str | None = None
    shipment_id: str | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    voided_at: datetime | None = None
    """When the carrier voided the shipment because the order was cancelled after it shipped."""
    void_refused_at: datetime | None = None
    """When the carrier first refused to void that shipment: while `voided_at` is None, the shipment is live
    (delivered already, say) and fulfillment keeps asking the carrier to void it."""
    void_refusal: str | None = None
    """What the carrier answered when it refused."""
    failure_reason: str | None = None

    @property
    def ended(self) -> bool:
        """Fulfillment is over: shipped (or delivered) or given up; no further attempt will be made."""
        return self.shipped_at is not None or self.delivered_at is not None or self.failure_reason is not None


class Cancellation(BaseModel):
    reason: str
    cancelled_at: datetime


class Order(BaseModel):
    id: str
    status: OrderStatus
    customer: Customer
    items: list[LineItem]
    currency: str
    total: str
    created_at: datetime
    updated_at: datetime
    fulfillment: Fulfillment | None = None
    cancellation: Cancellation | None = None
    history: list[StatusEntry]
    applied_event_ids: list[str] = Field(default_factory=list, description="Events already folded in (internal).")

    @classmethod
    def accept(
        cls, *, order_id: str, customer: Customer, items: list[LineItem], currency: str, minor_units: int, at: datetime
    ) -> "Order":
        return cls(
            id=order_id,
            status=OrderStatus.PENDING,
            customer=customer,
            items=items,
            currency=currency,
            total=order_total(items, minor_units),
            created_at=at,
            updated_at=at,
            history=[StatusEntry(status=OrderStatus.PENDING, at=at)],
        )

    def fold(self, event: EventData, *, event_id: str) -> bool:
        """Fold one fulfillment event into the order; False when it changes nothing (seen before, or not ours)."""
        if event_id in self.applied_event_ids:
            return False
        match event:
            case FulfillmentStarted():
                self._fulfillment().picked_up_at = event.picked_up_at
                self._advance(OrderStatus.PROCESSING, at=event.picked_up_at)
            case FulfillmentAttemptFailed():
                details = self._fulfillment()
                if event.attempt >= details.attempts:  # a late, older attempt never overwrites a newer one
                    details.last_error = event.error
                    if not details.ended:
                        details.next_attempt_at = event.next_attempt_at
                details.attempts = max(details.attempts, event.attempt)
                self._advance(OrderStatus.PROCESSING, at=event.failed_at)
            case FulfillmentShipped():
                details = self._fulfillment()
                details.carrier = event.carrier
                details.tracking_number = event.tracking_number
                details.shipment_id = event.shipment_id
                details.shipped_at = event.shipped_at
                details.next_attempt_at = None
                details.attempts = max(details.attempts, event.attempts)
                self._advance(OrderStatus.SHIPPED, at=event.shipped_at)
            case FulfillmentFailed():
                details = self._fulfillment()
                details.failure_reason = event.reason
                details.next_attempt_at = None
                details.attempts = max(details.attempts, event.attempts)
                self._advance(OrderStatus.FAILED, at=event.failed_at)
            case FulfillmentDelivered():
                details = self._fulfillment()
                details.delivered_at = event.delivered_at
                details.next_attempt_at = None
                self._advance(OrderStatus.DELIVERED, at=event.delivered_at)
            case FulfillmentVoided():
                # The order was cancelled (final) before this: only the fulfillment block records the void.
                self._fulfillment().voided_at = event.voided_at
                self.updated_at = max(self.updated_at, event.voided_at)
            case FulfillmentVoidRefused():
                # As for a void: only the fulfillment block records it (the order was cancelled or failed before).
                details = self._fulfillment()
                details.void_refused_at = event.refused_at
                details.void_refusal = event.reason
                self.updated_at = max(self.updated_at, event.refused_at)
            case _:
                return False
        self.applied_event_ids.append(event_id)
        return True

    def cancel(self, *, reason: str, at: datetime) -> bool:
        """Cancel a pending or processing order; False if it already was (cancelling again changes nothing)."""
        if self.status is OrderStatus.CANCELLED:
            return False
        if self.status not in (OrderStatus.PENDING, OrderStatus.PROCESSING):
            raise OrderNotCancellableError(self.id, self.status)
        self.cancellation = Cancellation(reason=reason, cancelled_at=at)
        self._advance(OrderStatus.CANCELLED, at=at)
        return True

    def _advance(self, status: OrderStatus, *, at: datetime) -> None:
        """Record that the order reached `status` at `at`.

        A status already in the history changes nothing; a final status is never left; a status of lower rank than
        the current one (a late `processing` after `shipped`) joins the history in rank order without moving the
        current status back. That holds for the final `delivered` and `failed` too, for the statuses on the way to
        them (a `fulfillment.started.v1` republished after its order was delivered: fulfillment crashed between its
        pickup and the announcement); a cancelled order takes none (what fulfillment did after the cancel is not the
        order's history).
        """
        self.updated_at = max(self.updated_at, at)
        if any(entry.status == status for entry in self.history):
            return
        if self.status.is_final and status not in _LATE_ENTRIES.get(self.status, ()):
            return
        self.history.append(StatusEntry(status=status, at=at))
        self.history.sort(key=lambda entry: (entry.status.rank, entry.at))
        if status.rank >= self.status.rank:
            self.status = status

    def _fulfillment(self) -> Fulfillment:
        if self.fulfillment is None:
            self.fulfillment = Fulfillment()
        return self.fulfillment


def order_total(items: list[LineItem], minor_units: int) -> str:
    """The exact decimal sum of quantity x unit price, written with the currency's minor units."""
    total = sum((Decimal(item.unit_price) * item.quantity for item in items), Decimal(0))
    return f"{total:.{minor_units}f}"
