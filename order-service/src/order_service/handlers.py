"""The order service's use cases: accept an order, read it, fold fulfillment progress into it."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from order_contracts.events import Customer, EventData, LineItem, OrderCreated
from uuid6 import uuid7

from order_service.adapters.events import AbstractEventPublisher
from order_service.adapters.orders import AbstractOrderRepository, ConcurrentUpdateError
from order_service.domain import Order, OrderNotFoundError

logger = logging.getLogger(__name__)

MAX_CONCURRENT_UPDATE_RETRIES = 20


def new_order_id() -> str:
    """Unique, URL-safe and time-ordered: a UUIDv7."""
    return str(uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class OrderHandlers:
    orders: AbstractOrderRepository
    publisher: AbstractEventPublisher
    clock: Callable[[], datetime] = utc_now
    next_id: Callable[[], str] = new_order_id

    async def create_order(
        self, *, customer: Customer, items: list[LineItem], currency: str, minor_units: int
    ) -> Order:
        order = Order.accept(
            order_id=self.next_id(),
            customer=customer,
            items=items,
            currency=currency,
            minor_units=minor_units,
            at=self.clock(),
        )
        await self.orders.add(order)
        await self.publisher.publish(
            OrderCreated(
                order_id=order.id,
                customer=order.customer,
                items=order.items,
                currency=order.currency,
                total=order.total,
                created_at=order.created_at,
            )
        )
        logger.info("order accepted", extra={"order_id": order.id, "total": order.total})
        return order

    async def get_order(self, order_id: str) -> Order:
        stored = await self.orders.get(order_id)
        if stored is None:
            raise OrderNotFoundError(order_id)
        return stored.order

    async def fold_event(self, event: EventData, *, event_id: str) -> bool:
        """Fold a fulfillment event into its order, retrying on concurrent updates; False if it changed nothing."""
        for _ in range(MAX_CONCURRENT_UPDATE_RETRIES):
            stored = await self.orders.get(event.order_id)
            if stored is None:
                raise OrderNotFoundError(event.order_id)
            if not stored.order.fold(event, event_id=event_id):
                return False
            try:
                await self.orders.update(stored.order, stored.etag)
            except ConcurrentUpdateError:
                logger.info("concurrent update, retrying", extra={"order_id": event.order_id})
                continue
            logger.info(
                "order progressed",
                extra={"order_id": event.order_id, "event_id": event_id, "status": stored.order.status},
            )
            return True
        raise ConcurrentUpdateError(event.order_id)
