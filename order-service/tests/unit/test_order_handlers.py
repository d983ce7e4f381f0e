"""The order use cases against in-memory fakes of the store and the publisher."""

import pytest
from order_contracts.events import Address, Customer, FulfillmentStarted, LineItem, OrderCreated
from order_service.adapters.orders import ConcurrentUpdateError, StoredOrder
from order_service.domain import Order, OrderNotFoundError, OrderStatus
from order_service.handlers import OrderHandlers, new_order_id
from order_service_fakes import FakeEventPublisher, FakeOrderRepository

CUSTOMER = Customer(
    id="cust-42",
    name="Jane Doe",
    email="jane@example.com",
    shipping_address=Address(line1="1 Example Street", city="London", postal_code="SW1A 1AA", country="GB"),
)
ITEMS = [LineItem(sku="BOOK-123", quantity=2, unit_price="12.50")]


@pytest.fixture
def handlers() -> OrderHandlers:
    return OrderHandlers(orders=FakeOrderRepository(), publisher=FakeEventPublisher())


@pytest.mark.anyio
async def test_creating_an_order_stores_it_and_publishes_order_created(handlers: OrderHandlers) -> None:
    order = await handlers.create_order(customer=CUSTOMER, items=ITEMS, currency="GBP", minor_units=2)

    assert (await handlers.get_order(order.id)).status is OrderStatus.PENDING
    assert isinstance(handlers.publisher, FakeEventPublisher)
    [event] = handlers.publisher.published
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

        async def update(self, order: Order, etag: str) -> None:
            if not self.raced:
                self.raced = True
                stored = await self.get(order.id)
                assert isinstance(stored, StoredOrder)
                await super().update(stored.order, stored.etag)
            await super().update(order, etag)

    handlers = OrderHandlers(orders=RacingRepository(), publisher=FakeEventPublisher())
    order = await handlers.create_order(customer=CUSTOMER, items=ITEMS, currency="GBP", minor_units=2)

    folded = await handlers.fold_event(
        FulfillmentStarted(order_id=order.id, picked_up_at=order.created_at), event_id="e1"
    )

    assert folded
    assert (await handlers.get_order(order.id)).status is OrderStatus.PROCESSING


@pytest.mark.anyio
async def test_an_update_that_keeps_conflicting_gives_up_loudly() -> None:
    class AlwaysConflicting(FakeOrderRepository):
        async def update(self, order: Order, etag: str) -> None:
            raise ConcurrentUpdateError(order.id)

    handlers = OrderHandlers(orders=AlwaysConflicting(), publisher=FakeEventPublisher())
    order = await handlers.create_order(customer=CUSTOMER, items=ITEMS, currency="GBP", minor_units=2)

    with pytest.raises(ConcurrentUpdateError):
        await handlers.fold_event(FulfillmentStarted(order_id=order.id, picked_up_at=order.created_at), event_id="e")
