"""The fulfillment use cases on the delivery path: pick an order up, stop it on cancel, hear the carrier's delivery.

None of them calls the carrier: each records what is to be done (the record and its work-index entry, in one state
transaction), publishes what that change owes, and wakes the shipping worker (worker.py) if work is left. So a
Kafka delivery is answered in a few milliseconds whatever the carrier does, and the orders behind it on the
partition are never held up.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from order_contracts.events import FulfillmentStarted, OrderCancelled, OrderCreated

from fulfillment_service.adapters.events import AbstractEventPublisher
from fulfillment_service.adapters.fulfillments import (
    AbstractFulfillmentStore,
    ConcurrentUpdateError,
    PickupsRefusedError,
)
from fulfillment_service.domain import FulfillmentRecord

logger = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 20


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownOrderError(Exception):
    """Fulfillment never picked this order up."""


@dataclass
class FulfillmentHandlers:
    store: AbstractFulfillmentStore
    publisher: AbstractEventPublisher
    wake_worker: Callable[[str], None]
    worker_id: str
    pickup_lease: Callable[[], timedelta | None]
    """How long a new pickup is leased to the instance's worker (`ShippingWorker.pickup_lease`)."""
    clock: Callable[[], datetime] = utc_now

    async def pick_up(self, order: OrderCreated) -> None:
        """Record the order as picked up and its shipping work as due now, then say so (`fulfillment.started.v1`).

        A redelivery (same event, or the same order again) starts nothing new; it publishes the pickup again with
        the same event id, in case the first publish was lost, and wakes this instance's worker if the order is
        still leased to it, in case the first write only seemed to fail. If that publish fails, the caller has the
        delivery retried: the work is already safe. An order cancelled before its pickup (`cancel`) is not picked up.
        """
        picked_up_at = await self._record_pickup(order)
        if picked_up_at is not None:
            await self.publisher.publish(FulfillmentStarted(order_id=order.order_id, picked_up_at=picked_up_at))

    async def pick_up_many(self, orders: Sequence[OrderCreated]) -> set[str]:
        """Pick up a batch of new orders (one bulk delivery): one transaction records them all, one bulk publish
        announces them; the ids of the orders now picked up and announced (deliver the others again).

        If the batch holds an order picked up before (a redelivery), nothing of it is written and each order is
        picked up on its own instead, as `pick_up` does."""
        unique = list({order.order_id: order for order in orders}.values())
        if not unique:
            return set()
        now, lease_for = self.clock(), self.pickup_lease()
        records = [FulfillmentRecord.pick_up(order, at=now, worker=self.worker_id, lease_for=lease_for)
                   for order in unique]  # fmt: skip
        try:
            await self.store.insert_many(records, now=now)
        except PickupsRefusedError:
            logger.info("batch holds orders picked up before: one at a time", extra={"orders": len(unique)})
            return {order.order_id for order in unique if await self._picked_up_alone(order)}
        for record in records:
            self.wake_worker(record.order_id)
            logger.info("order picked up", extra={"order_id": record.order_id})
        refused = await self.publisher.publish_many(
            [FulfillmentStarted(order_id=order.order_id, picked_up_at=now) for order in unique]
        )
        return {order.order_id for order in unique} - refused

    async def _picked_up_alone(self, order: OrderCreated) -> bool:
        try:
            await self.pick_up(order)
        except Exception:
            logger.exception("pickup failed", extra={"order_id": order.order_id})
            return False
        return True

    async def _record_pickup(self, order: OrderCreated) -> datetime | None:
        """When the order was picked up: now, by this instance, or before (a redelivery, or another replica handed
        the same event that wrote its record first: a new record is only ever inserted, never written over); None
        if it was cancelled before."""
        now = self.clock()
        record = FulfillmentRecord.pick_up(order, at=now, worker=self.worker_id, lease_for=self.pickup_lease())
        try:
            await self.store.save(record, None, now=now)  # insert-only: no read first, a new order is the rule
        except ConcurrentUpdateError:
            stored = await self.store.get(order.order_id)
            if stored is None:
                if await self.store.cancelled_before_pickup(order.order_id) is not None:
                    logger.warning("order cancelled before its pickup: not shipped", extra={"order_id": order.order_id})
                    return None
                raise  # not a pickup that lost to an earlier one: something else failed the write
            logger.info("order already picked up", extra={"order_id": order.order_id})
            if stored.record.is_leased_to(self.worker_id, self.clock()):
                # Perhaps this instance's own pickup, whose write committed though it seemed to fail (a timeout),
                # its worker never woken; and no other worker takes the order while the lease lasts. A wake-up too
                # many costs the worker one read.
                self.wake_worker(order.order_id)
            return stored.record.picked_up_at
        self.wake_worker(order.order_id)
        logger.info("order picked up", extra={"order_id": order.order_id})
        return record.picked_up_at

    async def cancel(self, cancellation: OrderCancelled) -> None:
        """Drop the order's work, or have its shipment voided if the carrier created one already. A cancel that
        comes before the order's pickup (its create was dead-lettered and is replayed later, say) is remembered, so
        that pickup is refused."""
        for _ in range(CONFLICT_ATTEMPTS):
            try:
                changed = await self._update(cancellation.order_id, lambda record: record.cancel())
            except UnknownOrderError:
                try:
                    await self.store.remember_cancel(cancellation)
                except ConcurrentUpdateError:  # picked up meanwhile: cancel its record
                    continue
                logger.warning(
                    "cancel before its order's pickup: remembered", extra={"order_id": cancellation.order_id}
                )
                return
            if changed:
                logger.info("fulfillment cancelled", extra={"order_id": cancellation.order_id})
            return
        raise ConcurrentUpdateError(cancellation.order_id)

    async def record_delivery(self, *, order_id: str, shipment_id: str, delivered_at: datetime) -> bool:
        """The carrier delivered the shipment; False when this changes nothing (the report came before).
        UnknownOrderError if fulfillment never picked that order up."""
        return await self._update(
            order_id, lambda record: record.record_delivery(shipment_id=shipment_id, at=delivered_at)
        )

    async def _update(self, order_id: str, change: Callable[[FulfillmentRecord], object]) -> bool:
        """Apply `change` to the record as it is now, publish what it owes and store it; False if it changed
        nothing. The worker is woken when something is left for it: a shipment to void, an event the broker
        refused, a lease to drop (so the order leaves the work index now rather than when the lease runs out)."""
        published: set[str] = set()
        for _ in range(CONFLICT_ATTEMPTS):
            stored = await self.store.get(order_id)
            if stored is None:
                raise UnknownOrderError(order_id)
            before = stored.record.model_copy(deep=True)
            now = self.clock()
            change(stored.record)
            if stored.record == before:
                return False
            await self.publisher.publish_owed(stored.record, published)
            try:
                await self.store.save(stored.record, stored, now=now)
            except ConcurrentUpdateError:
                continue
            if stored.record.owed_events or stored.record.needs_work() or stored.record.lease is not None:
                self.wake_worker(order_id)
            return True
        raise ConcurrentUpdateError(order_id)
