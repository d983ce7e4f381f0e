"""The order use cases against in-memory fakes of the store (with its outbox) and the idempotency keys."""

from datetime import timedelta

import pytest
from order_contracts.events import (
    Address,
    Customer,
    EventData,
    FulfillmentShipped,
    FulfillmentStarted,
    LineItem,
    OrderCreated,
)
from order_service.adapters.idempotency import IdempotencyRecord
from order_service.adapters.orders import ConcurrentUpdateError, StoredOrder
from order_service.adapters.outbox import OutboxEntry
from order_service.domain import Order, OrderNotCancellableError, OrderNotFoundError, OrderStatus
from order_service.handlers import (
    CreateOrder,
    IdempotencyKeyReusedError,
    IdempotentRequest,
    OrderHandlers,
    RequestInFlightError,
    new_order_id,
)
from order_service_fakes import FakeIdempotencyKeys, FakeOrderRepository

CUSTOMER = Customer(
    id="cust-42",
    name="Jane Doe",
    email="jane@example.com",
    shipping_address=Address(line1="1 Example Street", city="London", postal_code="SW1A 1AA", country="GB"),
)
ITEMS = [LineItem(sku="BOOK-123", quantity=2, unit_price="12.50")]
COMMAND = CreateOrder(customer=CUSTOMER, items=ITEMS, currency="GBP", minor_units=2)


def make_handlers(orders: FakeOrderRepository | None = None) -> OrderHandlers:
    return OrderHandlers(orders=orders or FakeOrderRepository(), idempotency_keys=FakeIdempotencyKeys())


def ever_owed(handlers: OrderHandlers) -> list[EventData]:
    assert isinstance(handlers.orders, FakeOrderRepository)
    return handlers.orders.ever_owed


@pytest.fixture
def handlers() -> OrderHandlers:
    return make_handlers()


def owed_types(handlers: OrderHandlers) -> list[str]:
    return [event.event_type for event in ever_owed(handlers)]


@pytest.mark.anyio
async def test_creating_an_order_stores_it_and_publishes_order_created(handlers: OrderHandlers) -> None:
    order = (await handlers.create_order(COMMAND)).order

    assert (await handlers.get_order(order.id)).status is OrderStatus.PENDING
    [event] = ever_owed(handlers)
    assert isinstance(event, OrderCreated)
    assert event.order_id == order.id
    assert event.total == "25.00"


def test_order_ids_are_unique_and_time_ordered() -> None:
    ids = [new_order_id() for _ in range(1000)]

    assert len(set(ids)) == 1000
    assert ids == sorted(ids)


@pytest.mark.anyio
async def test_reading_an_unknown_order_raises_not_found(handlers: OrderHandlers) -> None:
    with pytest.raises(OrderNotFoundError):
        await handlers.get_order("missing")


@pytest.mark.anyio
async def test_a_concurrent_update_is_retried_not_lost() -> None:
    class RacingRepository(FakeOrderRepository):
        """Someone else writes the order between our read and our first write."""

        raced = False

        async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
            if not self.raced:
                self.raced = True
                stored = await self.get(order.id)
                assert isinstance(stored, StoredOrder)
                await super().update(stored.order, stored.etag, [])
            await super().update(order, etag, owed)

    handlers = make_handlers(RacingRepository())
    order = (await handlers.create_order(COMMAND)).order

    folded = await handlers.fold_event(
        FulfillmentStarted(order_id=order.id, picked_up_at=order.created_at), event_id="e1"
    )

    assert folded
    assert (await handlers.get_order(order.id)).status is OrderStatus.PROCESSING


@pytest.mark.anyio
async def test_an_update_that_keeps_conflicting_gives_up_loudly() -> None:
    class AlwaysConflicting(FakeOrderRepository):
        async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
            raise ConcurrentUpdateError(order.id)

    handlers = make_handlers(AlwaysConflicting())
    order = (await handlers.create_order(COMMAND)).order

    with pytest.raises(ConcurrentUpdateError):
        await handlers.fold_event(FulfillmentStarted(order_id=order.id, picked_up_at=order.created_at), event_id="e")


@pytest.mark.anyio
async def test_the_same_key_and_body_replays_the_first_order(handlers: OrderHandlers) -> None:
    request = IdempotentRequest(key="key-1", fingerprint="body-a")

    first = await handlers.create_order(COMMAND, request)
    again = await handlers.create_order(COMMAND, request)

    assert not first.replayed
    assert again.replayed
    assert again.order.id == first.order.id
    assert owed_types(handlers) == ["order.created.v1"]


@pytest.mark.anyio
async def test_the_same_key_with_another_body_is_refused(handlers: OrderHandlers) -> None:
    await handlers.create_order(COMMAND, IdempotentRequest(key="key-1", fingerprint="body-a"))

    with pytest.raises(IdempotencyKeyReusedError):
        await handlers.create_order(COMMAND, IdempotentRequest(key="key-1", fingerprint="body-b"))


@pytest.mark.anyio
async def test_a_request_whose_first_is_still_in_flight_is_told_to_retry() -> None:
    handlers = make_handlers()
    handlers.in_flight_wait = timedelta(0)
    claimed_now = IdempotencyRecord(request_fingerprint="body-a", order_id="in-flight", claimed_at=handlers.clock())
    assert isinstance(handlers.idempotency_keys, FakeIdempotencyKeys)
    handlers.idempotency_keys.records["key-1"] = claimed_now

    with pytest.raises(RequestInFlightError):
        await handlers.create_order(COMMAND, IdempotentRequest(key="key-1", fingerprint="body-a"))


@pytest.mark.anyio
async def test_an_abandoned_claim_is_taken_over_with_the_claimed_order_id() -> None:
    handlers = make_handlers()
    long_ago = handlers.clock() - timedelta(minutes=5)
    assert isinstance(handlers.idempotency_keys, FakeIdempotencyKeys)
    handlers.idempotency_keys.records["key-1"] = IdempotencyRecord(
        request_fingerprint="body-a", order_id="crashed-before-storing", claimed_at=long_ago
    )

    created = await handlers.create_order(COMMAND, IdempotentRequest(key="key-1", fingerprint="body-a"))

    assert created.order.id == "crashed-before-storing"
    assert owed_types(handlers) == ["order.created.v1"]


@pytest.mark.anyio
async def test_cancelling_publishes_order_cancelled_and_is_final(handlers: OrderHandlers) -> None:
    order = (await handlers.create_order(COMMAND)).order

    cancelled = await handlers.cancel_order(order.id, reason="changed my mind")
    again = await handlers.cancel_order(order.id, reason="twice")

    assert cancelled.status is OrderStatus.CANCELLED
    assert again.cancellation == cancelled.cancellation
    assert owed_types(handlers) == ["order.created.v1", "order.cancelled.v1"]


@pytest.mark.anyio
async def test_a_shipped_order_cannot_be_cancelled(handlers: OrderHandlers) -> None:
    order = (await handlers.create_order(COMMAND)).order
    await handlers.fold_event(
        FulfillmentShipped(
            order_id=order.id,
            carrier="c",
            tracking_number="t",
            shipment_id="s",
            shipped_at=order.created_at,
            attempts=1,
        ),
        event_id="shipped",
    )

    with pytest.raises(OrderNotCancellableError):
        await handlers.cancel_order(order.id, reason="too late")
