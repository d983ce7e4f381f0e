"""Fulfillment of one order: its lifecycle, the rules for retrying the carrier, and the events each step owes.

Pure: no FastAPI, no Dapr. Every transition is idempotent (applying it again changes nothing), because the
inputs arrive at least once: Kafka redelivers, a worker may repeat a carrier call after a crash, and two replicas
may both hear the carrier's answer for the same order.

    order.created ─► PENDING ──carrier 2xx──► SHIPPED ──webhook──► DELIVERED
                      │  ▲ └─carrier 422 / give-up─► FAILED
                      │  └─ carrier 5xx/timeout/breaker: parked, retried with backoff
                      └─ order.cancelled ─► CANCELLED            SHIPPED ─order.cancelled─► VOIDING ─► VOIDED
                                                                       (void refused or unreachable: asked again) ┘

A CANCELLED or FAILED order whose calls may have created a shipment nobody heard of (`unheard_call`) has the
carrier searched by its reference, and what is found voided (VOIDED, or FAILED with a voided event).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from order_contracts.events import (
    FulfillmentAttemptFailed,
    FulfillmentDelivered,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentVoided,
    FulfillmentVoidRefused,
    OrderCreated,
)
from pydantic import BaseModel

OwedEvent = (
    FulfillmentAttemptFailed
    | FulfillmentShipped
    | FulfillmentFailed
    | FulfillmentVoided
    | FulfillmentVoidRefused
    | FulfillmentDelivered
)

CARRIER_UNAVAILABLE = "carrier unavailable"
OWED_EVENTS_GRACE = timedelta(seconds=30)


class FulfillmentStatus(StrEnum):
    PENDING = "pending"
    """Picked up; the shipment is still to be created (first attempt due, or parked until the next one)."""
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Cancelled before any shipment existed: nothing left to do."""
    VOIDING = "voiding"
    """Cancelled after the carrier created a shipment: the shipment is still to be voided (asked again, with
    backoff, for as long as the carrier cannot be reached or refuses)."""
    VOIDED = "voided"


class ShipmentNotRecordedError(Exception):
    def __init__(self, order_id: str) -> None:
        super().__init__(f"no shipment is recorded for order {order_id} yet")
        self.order_id = order_id


@dataclass(frozen=True)
class RetryPolicy:
    """When to try the carrier again after an attempt failed (each attempt already includes the sidecar's fast
    retries), and when to give up."""

    first_delay: timedelta
    max_delay: timedelta
    give_up_after: timedelta
    """Measured from the pickup: once this much time has passed, a failed attempt fails the order."""

    def gives_up(self, *, picked_up_at: datetime, at: datetime) -> bool:
        """Whether an attempt failing at `at` fails the order."""
        return at - picked_up_at >= self.give_up_after

    def delay_after(self, attempt: int) -> timedelta:
        """Doubling from `first_delay`, capped at `max_delay`."""
        doublings = min(attempt - 1, 30)
        delay: timedelta = self.first_delay * (2**doublings)
        return min(delay, self.max_delay)


class Shipment(BaseModel):
    shipment_id: str
    carrier: str
    tracking_number: str


class Lease(BaseModel):
    """Who is working on the order (a carrier call in progress) and until when others should leave it alone."""

    owner: str
    until: datetime


class FulfillmentRecord(BaseModel):
    order: OrderCreated
    status: FulfillmentStatus
    picked_up_at: datetime
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    shipment: Shipment | None = None
    void_attempts: int = 0
    void_refused: bool = False
    """The carrier has refused to void the shipment at least once (`fulfillment.void_refused.v1` was owed)."""
    unheard_call: bool = False
    """A carrier call may have created a shipment whose answer was never heard (a timeout, a crash) and the order is
    ending without one (cancelled, or given up on): the carrier is asked for it by the order reference and whatever
    it has is voided, so no order ends `cancelled` or `failed` with a live shipment nobody knows of."""
    lease: Lease | None = None
    owed_events: list[OwedEvent] = []
    """Events recorded with the state change that caused them and not yet confirmed published: the worker
    publishes them (again, with the same ids) until they are settled."""

    @property
    def order_id(self) -> str:
        return self.order.order_id

    @classmethod
    def pick_up(
        cls, order: OrderCreated, *, at: datetime, worker: str, lease_for: timedelta | None
    ) -> "FulfillmentRecord":
        """A new order, leased at once to the worker of the instance that picked it up (unless `lease_for` is None:
        then it is due for any worker)."""
        return cls(
            order=order,
            status=FulfillmentStatus.PENDING,
            picked_up_at=at,
            next_attempt_at=at,
            lease=None if lease_for is None else Lease(owner=worker, until=at + lease_for),
        )

    def due_at(self, now: datetime) -> datetime | None:
        """When a worker should next look at this order; None when there is nothing left to do.

        Work leased to a worker is due again when the lease ends, so another replica takes it over if that worker
        died. Owed events are published by the worker that recorded them, right after; they become everyone's
        work after OWED_EVENTS_GRACE, for the same reason.
        """
        if self.lease is not None and self.lease.until > now:
            due: datetime | None = self.lease.until
        elif self.needs_work():
            due = self.next_attempt_at or now
        else:
            due = None
        if self.owed_events:
            grace_ends = now + OWED_EVENTS_GRACE
            due = grace_ends if due is None else min(due, grace_ends)
        return due

    def needs_work(self) -> bool:
        return self.status in (FulfillmentStatus.PENDING, FulfillmentStatus.VOIDING) or self.unheard_call

    def is_due(self, now: datetime) -> bool:
        return self.needs_work() and (self.next_attempt_at is None or self.next_attempt_at <= now)

    def is_leased_to_another(self, worker: str, now: datetime) -> bool:
        return self.lease is not None and self.lease.owner != worker and self.lease.until > now

    def is_leased_to(self, worker: str, now: datetime) -> bool:
        """The worker holds a lease that has not run out (one that has, it must claim again: others may)."""
        return self.lease is not None and self.lease.owner == worker and self.lease.until > now

    def claim(self, worker: str, *, now: datetime, lease_for: timedelta) -> None:
        self.lease = Lease(owner=worker, until=now + lease_for)

    def record_shipment(self, shipment: Shipment, *, at: datetime) -> None:
        """The carrier created (or, for a repeated key, returned) the shipment."""
        self.lease = None
        self.next_attempt_at = None
        if self.shipment is None:
            self.shipment = shipment
        if self.status is FulfillmentStatus.PENDING:
            self.attempts += 1
            self.status = FulfillmentStatus.SHIPPED
            self.owed_events.append(
                FulfillmentShipped(
                    order_id=self.order_id,
                    carrier=shipment.carrier,
                    tracking_number=shipment.tracking_number,
                    shipment_id=shipment.shipment_id,
                    shipped_at=at,
                    attempts=self.attempts,
                )
            )
        elif self.status is FulfillmentStatus.CANCELLED:
            # The cancel arrived while the carrier was creating the shipment: it must be voided.
            self.status = FulfillmentStatus.VOIDING
            self.unheard_call = False  # heard now: one key, one shipment

    def record_rejection(self, reason: str, *, at: datetime) -> None:
        """The carrier refused the shipment for good."""
        self.lease = None
        if self.status is not FulfillmentStatus.PENDING:
            return
        self.attempts += 1
        self._fail(reason, at=at)

    def record_failed_attempt(self, error: str, *, at: datetime, policy: RetryPolicy) -> None:
        """The carrier could not be reached, failed or was too slow: park the order until the next attempt, or fail
        it once the give-up window has passed."""
        self.lease = None
        if self.status is not FulfillmentStatus.PENDING:
            return
        self.attempts += 1
        self.last_error = error
        giving_up = policy.gives_up(picked_up_at=self.picked_up_at, at=at)
        self.next_attempt_at = None if giving_up else at + policy.delay_after(self.attempts)
        self.owed_events.append(
            FulfillmentAttemptFailed(
                order_id=self.order_id,
                attempt=self.attempts,
                error=error,
                failed_at=at,
                next_attempt_at=self.next_attempt_at,
            )
        )
        if giving_up:
            self._fail(CARRIER_UNAVAILABLE, at=at)
            self.unheard_call = True  # the failed attempts may have reached the carrier

    def cancel(self) -> None:
        """The order was cancelled: drop the work that is left, or void the shipment if there is one."""
        if self.status is FulfillmentStatus.PENDING:
            self.status = FulfillmentStatus.CANCELLED
            self.next_attempt_at = None
            # A lease stays: a carrier call may be in progress, and its answer must still be heard (and voided).
            # If it, or an earlier failed attempt, created a shipment without our hearing of it, it is found and voided.
            self.unheard_call = self.attempts > 0 or self.lease is not None
        elif self.status is FulfillmentStatus.SHIPPED:
            self.status = FulfillmentStatus.VOIDING
            self.next_attempt_at = None

    def record_nothing_found(self) -> None:
        """The carrier has no shipment for the order: the unheard call created none."""
        self.lease = None
        self.unheard_call = False
        self.next_attempt_at = None

    def record_void(self, shipment: Shipment, *, at: datetime) -> None:
        """The carrier voided the shipment: the one recorded (the order was cancelled after it was created), or one
        found under the order's reference that no call had heard of (VOIDED if cancelled; a failed order stays
        failed). Either way `fulfillment.voided.v1` says so."""
        self.lease = None
        if self.status is FulfillmentStatus.VOIDING:
            self.status = FulfillmentStatus.VOIDED
        elif self.unheard_call:
            self.shipment = shipment
            if self.status is FulfillmentStatus.CANCELLED:
                self.status = FulfillmentStatus.VOIDED
        else:
            return
        self.unheard_call = False
        self.next_attempt_at = None
        self.owed_events.append(
            FulfillmentVoided(order_id=self.order_id, shipment_id=shipment.shipment_id, voided_at=at)
        )

    def record_failed_void(self, error: str, *, at: datetime, policy: RetryPolicy) -> None:
        """The carrier could not be reached to void (or find) the shipment: try again later (never gives up)."""
        self.lease = None
        if self.status is not FulfillmentStatus.VOIDING and not self.unheard_call:
            return
        self.void_attempts += 1
        self.last_error = error
        self.next_attempt_at = at + policy.delay_after(self.void_attempts)

    def record_void_refused(self, shipment: Shipment, reason: str, *, at: datetime, policy: RetryPolicy) -> None:
        """The carrier refused to void the shipment (it was delivered already, say): the shipment is still live, so
        the void is asked for again with backoff, never given up, as after a failed void. The first refusal owes
        `fulfillment.void_refused.v1`, so the order shows its shipment is live; the later ones only count."""
        self.lease = None
        if self.status is not FulfillmentStatus.VOIDING and not self.unheard_call:
            return
        if not self.void_refused:
            self.owed_events.append(
                FulfillmentVoidRefused(
                    order_id=self.order_id, shipment_id=shipment.shipment_id, reason=reason, refused_at=at
                )
            )
        self.void_refused = True
        self.void_attempts += 1
        self.last_error = reason
        self.next_attempt_at = at + policy.delay_after(self.void_attempts)

    def record_delivery(self, *, shipment_id: str, at: datetime) -> None:
        """The carrier reported the shipment delivered (a repeated report changes nothing).

        ShipmentNotRecordedError while the carrier's answer to the create call has not been heard (it can be
        withheld or lost): the report must be sent again later, not dropped."""
        if self.status is FulfillmentStatus.PENDING or (self.unheard_call and self.shipment is None):
            # Also a shipment nobody heard of, while the carrier is being asked for it to void it: the report is
            # answered "later", and the void comes first unless the carrier really delivered.
            raise ShipmentNotRecordedError(self.order_id)
        if self.status is not FulfillmentStatus.SHIPPED or self.shipment is None:
            return
        if self.shipment.shipment_id != shipment_id:
            return
        self.status = FulfillmentStatus.DELIVERED
        self.owed_events.append(FulfillmentDelivered(order_id=self.order_id, shipment_id=shipment_id, delivered_at=at))

    def settle(self, published: list[OwedEvent]) -> None:
        """Forget owed events that the broker has accepted."""
        published_ids = {event.event_id() for event in published}
        self.owed_events = [event for event in self.owed_events if event.event_id() not in published_ids]

    def _fail(self, reason: str, *, at: datetime) -> None:
        self.status = FulfillmentStatus.FAILED
        self.next_attempt_at = None
        self.owed_events.append(
            FulfillmentFailed(order_id=self.order_id, reason=reason, failed_at=at, attempts=self.attempts)
        )
