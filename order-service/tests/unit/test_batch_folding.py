"""Folding a batch of fulfillment events (one bulk delivery): one read and one transaction when nothing interferes,
order by order when something does, and each order's events always folded in the order they were delivered."""

from datetime import UTC, datetime, timedelta

import pytest
from order_contracts.events import (
    Address,
    Customer,
    FulfillmentDelivered,
    FulfillmentShipped,
    FulfillmentStarted,
    LineItem,
)
from order_service.adapters.orders import BatchRefusedError, StoredOrder
from order_service.adapters.outbox import OutboxEntry
from order_service.domain import Order, OrderStatus
from order_service.handlers import CreateOrder, DeliveredEvent, FoldOutcome, OrderHandlers
from order_service_fakes import FakeIdempotencyKeys, FakeOrderRepository

pytestmark = pytest.mark.anyio

AT = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
COMMAND = CreateOrder(
    customer=Customer(
        id="cust-7",
        name="Ada Lovelace",
        email="ada@example.com",
        shipping_address=Address(line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"),
    ),
    items=[LineItem(sku="BOOK-123", quantity=1, unit_price="12.50")],
    currency="GBP",
    minor_units=2,
)


class CountingRepository(FakeOrderRepository):
    """Counts the calls the handlers make, as the sidecar would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.batch_writes = 0
        self.single_writes = 0

    async def get(self, order_id: str) -> StoredOrder | None:
        self.reads += 1
        return await super().get(order_id)

    async def get_many(self, order_ids: list[str]) -> dict[str, StoredOrder]:
        found = await super().get_many(order_ids)
        self.reads -= len(order_ids) - 1  # one call, however many orders
        return found

    async def update_many(self, orders: list[StoredOrder]) -> None:
        self.batch_writes += 1
        await super().update_many(orders)

    async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
        self.single_writes += 1
        await super().update(order, etag, owed)


def progress(order_id: str) -> list[DeliveredEvent]:
    """An order's pickup, shipment and delivery, in the order fulfillment publishes them."""
    return [
        DeliveredEvent(FulfillmentStarted(order_id=order_id, picked_up_at=AT), f"started:{order_id}"),
        DeliveredEvent(
            FulfillmentShipped(
                order_id=order_id,
                carrier="acme",
                tracking_number=f"TRK-{order_id}",
                shipment_id=f"shp-{order_id}",
                shipped_at=AT + timedelta(seconds=1),
                attempts=1,
            ),
            f"shipped:{order_id}",
        ),
        DeliveredEvent(
            FulfillmentDelivered(order_id=order_id, shipment_id=f"shp-{order_id}", delivered_at=AT + timedelta(days=1)),
            f"delivered:{order_id}",
        ),
    ]


async def new_orders(handlers: OrderHandlers, count: int) -> list[str]:
    return [(await handlers.create_order(COMMAND)).order.id for _ in range(count)]


def interleaved(*orders: list[DeliveredEvent]) -> list[DeliveredEvent]:
    """The events of several orders as one partition could hold them: interleaved, each order's in its order."""
    return [event for step in zip(*orders, strict=True) for event in step]


def make_handlers(orders: FakeOrderRepository) -> OrderHandlers:
    return OrderHandlers(orders=orders, idempotency_keys=FakeIdempotencyKeys())


async def test_a_batch_is_folded_with_one_read_and_one_write_however_many_orders_it_holds() -> None:
    orders = CountingRepository()
    handlers = make_handlers(orders)
    ids = await new_orders(handlers, 30)
    batch = interleaved(*(progress(order_id) for order_id in ids))
    orders.reads = 0

    outcomes = await handlers.fold_events(batch)

    assert outcomes == [FoldOutcome.FOLDED] * 90
    assert (orders.reads, orders.batch_writes, orders.single_writes) == (1, 1, 0)
    for order_id in ids:
        order = await handlers.get_order(order_id)
        assert order.status is OrderStatus.DELIVERED
        assert [entry.status for entry in order.history] == ["pending", "processing", "shipped", "delivered"]


async def test_events_seen_before_in_the_same_or_an_earlier_batch_change_nothing() -> None:
    orders = CountingRepository()
    handlers = make_handlers(orders)
    [order_id] = await new_orders(handlers, 1)
    events = progress(order_id)
    await handlers.fold_events([events[0], events[0]])
    once = await handlers.get_order(order_id)

    outcomes = await handlers.fold_events([events[0]])

    assert outcomes == [FoldOutcome.FOLDED]
    assert await handlers.get_order(order_id) == once
    assert orders.batch_writes == 1  # the repeat wrote nothing


async def test_an_event_for_an_unknown_order_is_told_apart_and_the_rest_of_the_batch_is_folded() -> None:
    handlers = make_handlers(FakeOrderRepository())
    [order_id] = await new_orders(handlers, 1)
    [unknown_started, *_] = progress("no-such-order")

    outcomes = await handlers.fold_events([unknown_started, *progress(order_id)])

    assert outcomes == [FoldOutcome.UNKNOWN_ORDER, FoldOutcome.FOLDED, FoldOutcome.FOLDED, FoldOutcome.FOLDED]
    assert (await handlers.get_order(order_id)).status is OrderStatus.DELIVERED


async def test_a_concurrent_write_to_one_order_folds_the_batch_order_by_order_and_loses_neither_write() -> None:
    class CancelledMeanwhile(CountingRepository):
        """A customer's cancel lands on one order between the batch's read and its write."""

        victim = ""

        async def get_many(self, order_ids: list[str]) -> dict[str, StoredOrder]:
            found = await super().get_many(order_ids)
            current = await FakeOrderRepository.get(self, self.victim)
            assert current is not None
            current.order.cancel(reason="changed my mind", at=AT)
            await FakeOrderRepository.update(self, current.order, current.etag, [])
            return found

    orders = CancelledMeanwhile()
    handlers = make_handlers(orders)
    ids = await new_orders(handlers, 3)
    orders.victim = ids[1]
    started = [progress(order_id)[0] for order_id in ids]

    outcomes = await handlers.fold_events(started)

    assert outcomes == [FoldOutcome.FOLDED] * 3
    assert orders.single_writes == 3  # the batch refused, then each order alone
    victim = await handlers.get_order(ids[1])
    assert victim.status is OrderStatus.CANCELLED  # the cancel stays; the pickup is in its fulfillment details
    assert victim.fulfillment is not None
    assert victim.fulfillment.picked_up_at == AT
    for order_id in (ids[0], ids[2]):
        assert (await handlers.get_order(order_id)).status is OrderStatus.PROCESSING


async def test_when_an_event_cannot_be_folded_the_later_events_of_its_order_are_not_folded_either() -> None:
    """So a redelivery folds them in their order: the shipment is never folded before the pickup."""

    class StoreFailsForOneOrder(FakeOrderRepository):
        failing = ""

        async def update_many(self, orders: list[StoredOrder]) -> None:
            if any(stored.order.id == self.failing for stored in orders):
                raise BatchRefusedError("the store is failing")
            await super().update_many(orders)

        async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
            if order.id == self.failing:
                raise ConnectionError("the store is failing")
            await super().update(order, etag, owed)

    orders = StoreFailsForOneOrder()
    handlers = make_handlers(orders)
    ids = await new_orders(handlers, 2)
    orders.failing = ids[0]

    outcomes = await handlers.fold_events(interleaved(progress(ids[0]), progress(ids[1])))

    assert outcomes == [FoldOutcome.NOT_FOLDED, FoldOutcome.FOLDED] * 3
    assert (await handlers.get_order(ids[0])).status is OrderStatus.PENDING
    assert (await handlers.get_order(ids[1])).status is OrderStatus.DELIVERED

    orders.failing = ""
    redelivered = await handlers.fold_events(progress(ids[0]))

    assert redelivered == [FoldOutcome.FOLDED] * 3
    order = await handlers.get_order(ids[0])
    assert [entry.status for entry in order.history] == ["pending", "processing", "shipped", "delivered"]
