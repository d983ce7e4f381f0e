"""The order service's use cases: accept an order, read it, fold fulfillment progress into it."""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from order_contracts.cloudevents import envelope
from order_contracts.events import Customer, EventData, LineItem, OrderCancelled, OrderCreated
from uuid6 import uuid7

from order_service.adapters.idempotency import AbstractIdempotencyKeys, IdempotencyRecord
from order_service.adapters.orders import (
    AbstractOrderRepository,
    BatchRefusedError,
    ConcurrentUpdateError,
    OrderAlreadyExistsError,
    StoredOrder,
)
from order_service.adapters.outbox import OutboxEntry
from order_service.domain import Order, OrderNotFoundError

logger = logging.getLogger(__name__)

MAX_CONCURRENT_UPDATE_RETRIES = 20


class IdempotencyKeyReusedError(Exception):
    """The key was first used with a different request body."""


class RequestInFlightError(Exception):
    """The first request with this key is still being processed: try again shortly."""

    retry_after_seconds = 1


@dataclass(frozen=True)
class CreateOrder:
    customer: Customer
    items: list[LineItem]
    currency: str
    minor_units: int


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str
    """A digest of the request body as parsed JSON: the same key with another body is refused."""


@dataclass(frozen=True)
class CreatedOrder:
    order: Order
    replayed: bool


@dataclass(frozen=True)
class DeliveredEvent:
    """A fulfillment event as delivered, with its CloudEvent id (what folding de-duplicates on)."""

    event: EventData
    event_id: str


class FoldOutcome(StrEnum):
    FOLDED = "folded"
    """Folded into its order, or seen before: done."""
    UNKNOWN_ORDER = "unknown-order"
    """No such order: poison."""
    NOT_FOLDED = "not-folded"
    """Not folded now (the store failed): deliver it again."""


def new_order_id() -> str:
    """Unique, URL-safe and time-ordered: a UUIDv7."""
    return str(uuid7())


def utc_now() -> datetime:
    return datetime.now(UTC)


def _no_op(_: list[OutboxEntry]) -> None:
    return None


@dataclass
class OrderHandlers:
    orders: AbstractOrderRepository
    idempotency_keys: AbstractIdempotencyKeys
    event_source: str = "order-service"
    on_events_owed: Callable[[list[OutboxEntry]], None] = _no_op
    """Told after each commit that recorded events in the outbox, with them (the relay publishes them)."""
    clock: Callable[[], datetime] = utc_now
    next_id: Callable[[], str] = new_order_id
    in_flight_wait: timedelta = timedelta(seconds=2)
    """How long a request waits for the first request with its key to finish before answering 409."""
    takeover_after: timedelta = timedelta(seconds=10)
    """A claim whose order is still missing after this long was abandoned (a crash): the next request creates it."""

    async def create_order(self, command: CreateOrder, idempotency: IdempotentRequest | None = None) -> CreatedOrder:
        """Accept a new order; with an idempotency key, at most one order is ever created for the key."""
        order_id = self.next_id()
        if idempotency is not None:
            holder = await self.idempotency_keys.claim(
                idempotency.key,
                IdempotencyRecord(
                    request_fingerprint=idempotency.fingerprint, order_id=order_id, claimed_at=self.clock()
                ),
            )
            if holder is not None:
                if holder.request_fingerprint != idempotency.fingerprint:
                    raise IdempotencyKeyReusedError
                return CreatedOrder(await self._order_of_claim(holder, command), replayed=True)
        return CreatedOrder(await self._accept(order_id, command, contested=idempotency is not None), replayed=False)

    async def _order_of_claim(self, claim: IdempotencyRecord, command: CreateOrder) -> Order:
        deadline = asyncio.get_running_loop().time() + self.in_flight_wait.total_seconds()
        while True:
            stored = await self.orders.get(claim.order_id)
            if stored is not None:
                return stored.order
            if self.clock() - claim.claimed_at > self.takeover_after:
                logger.warning("taking over an abandoned idempotent create", extra={"order_id": claim.order_id})
                return await self._accept(claim.order_id, command, contested=True)
            if asyncio.get_running_loop().time() > deadline:
                raise RequestInFlightError
            await asyncio.sleep(0.02)

    async def _accept(self, order_id: str, command: CreateOrder, *, contested: bool) -> Order:
        order = Order.accept(
            order_id=order_id,
            customer=command.customer,
            items=command.items,
            currency=command.currency,
            minor_units=command.minor_units,
            at=self.clock(),
        )
        created = OrderCreated(
            order_id=order.id,
            customer=order.customer,
            items=order.items,
            currency=order.currency,
            total=order.total,
            created_at=order.created_at,
        )
        owed = [self._owe(created, opens_order=True)]
        try:
            await self.orders.add(order, owed, contested=contested)
        except OrderAlreadyExistsError:  # another request of the same key stored it first: theirs is the order
            stored = await self.orders.get(order_id)
            assert stored is not None
            return stored.order
        self.on_events_owed(owed)
        logger.info("order accepted", extra={"order_id": order.id, "total": order.total})
        return order

    def _owe(self, event: EventData, *, opens_order: bool = False) -> OutboxEntry:
        cloud_event = envelope(event, source=self.event_source, time=self.clock())
        return OutboxEntry(
            event_id=cloud_event.id,
            partition_key=event.order_id,
            cloud_event=cloud_event.model_dump_json(exclude_none=True),
            recorded_at=self.clock(),
            opens_order=opens_order,
        )

    async def get_order(self, order_id: str) -> Order:
        stored = await self.orders.get(order_id)
        if stored is None:
            raise OrderNotFoundError(order_id)
        return stored.order

    async def cancel_order(self, order_id: str, *, reason: str) -> Order:
        """Cancel a pending or processing order, owing order.cancelled.v1 in the same transaction; cancelling a
        cancelled order again changes nothing."""
        for _ in range(MAX_CONCURRENT_UPDATE_RETRIES):
            stored = await self.orders.get(order_id)
            if stored is None:
                raise OrderNotFoundError(order_id)
            order = stored.order
            if order.cancel(reason=reason, at=self.clock()):
                assert order.cancellation is not None
                cancelled = OrderCancelled(
                    order_id=order.id, reason=order.cancellation.reason, cancelled_at=order.cancellation.cancelled_at
                )
                owed = [self._owe(cancelled)]
                try:
                    await self.orders.update(order, stored.etag, owed)
                except ConcurrentUpdateError:
                    continue
                self.on_events_owed(owed)
            logger.info("order cancelled", extra={"order_id": order.id})
            return order
        raise ConcurrentUpdateError(order_id)

    async def fold_events(self, batch: Sequence[DeliveredEvent]) -> list[FoldOutcome]:
        """Fold a batch of fulfillment events, each order's in the order given; an outcome per event.

        One read of every order in the batch and one transaction for all that changed. If that transaction is
        refused (a cancel or another replica wrote one of them meanwhile, or the store failed), the batch is folded
        order by order instead; an event that could not be folded then is NOT_FOLDED, and so is every later event
        of its order in the batch, so a redelivery folds them in their order."""
        positions: dict[str, list[int]] = {}
        for position, delivered in enumerate(batch):
            positions.setdefault(delivered.event.order_id, []).append(position)
        outcomes = [FoldOutcome.FOLDED] * len(batch)
        stored = await self.orders.get_many(list(positions))
        changed: list[StoredOrder] = []
        for order_id, order_positions in positions.items():
            current = stored.get(order_id)
            if current is None:
                for position in order_positions:
                    outcomes[position] = FoldOutcome.UNKNOWN_ORDER
                continue
            folded = [current.order.fold(batch[position].event, event_id=batch[position].event_id)
                      for position in order_positions]  # fmt: skip
            if any(folded):
                changed.append(current)
        if not changed:
            return outcomes
        try:
            await self.orders.update_many(changed)
        except BatchRefusedError as refusal:
            logger.info("batch refused, folding order by order", extra={"orders": len(changed), "error": str(refusal)})
            await asyncio.gather(
                *(self._fold_in_turn(batch, order_positions, outcomes) for order_positions in positions.values())
            )
            return outcomes
        for progressed in changed:
            logger.info("order progressed", extra={"order_id": progressed.order.id, "status": progressed.order.status})
        return outcomes

    async def _fold_in_turn(
        self, batch: Sequence[DeliveredEvent], order_positions: list[int], outcomes: list[FoldOutcome]
    ) -> None:
        for turn, position in enumerate(order_positions):
            try:
                await self.fold_event(batch[position].event, event_id=batch[position].event_id)
            except OrderNotFoundError:
                outcomes[position] = FoldOutcome.UNKNOWN_ORDER
            except Exception:
                logger.exception("could not fold", extra={"event_id": batch[position].event_id})
                for later in order_positions[turn:]:
                    outcomes[later] = FoldOutcome.NOT_FOLDED
                return

    async def fold_event(self, event: EventData, *, event_id: str) -> bool:
        """Fold a fulfillment event into its order, retrying on concurrent updates; False if it changed nothing."""
        for _ in range(MAX_CONCURRENT_UPDATE_RETRIES):
            stored = await self.orders.get(event.order_id)
            if stored is None:
                raise OrderNotFoundError(event.order_id)
            if not stored.order.fold(event, event_id=event_id):
                return False
            try:
                await self.orders.update(stored.order, stored.etag, [])
            except ConcurrentUpdateError:
                logger.info("concurrent update, retrying", extra={"order_id": event.order_id})
                continue
            logger.info(
                "order progressed",
                extra={"order_id": event.order_id, "event_id": event_id, "status": stored.order.status},
            )
            return True
        raise ConcurrentUpdateError(event.order_id)
