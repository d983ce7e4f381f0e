"""The fulfillment use case against fakes: ship once, report progress, a permanent rejection fails the order."""

from datetime import UTC, datetime

import pytest
from fulfillment_fakes import FakeCarrier, FakeEventPublisher, FakeFulfillmentRecords
from fulfillment_service.adapters.carrier import CarrierUnavailableError
from fulfillment_service.handlers import FulfillmentHandlers
from order_contracts.events import (
    Address,
    Customer,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentStarted,
    LineItem,
    OrderCreated,
)

ORDER = OrderCreated(
    order_id="order-1",
    customer=Customer(
        id="cust-42",
        name="Jane Doe",
        email="jane@example.com",
        shipping_address=Address(line1="1 Example Street", city="London", postal_code="SW1A 1AA", country="GB"),
    ),
    items=[LineItem(sku="BOOK-123", quantity=2, unit_price="12.50")],
    currency="GBP",
    total="25.00",
    created_at=datetime(2026, 11, 23, 21, 0, tzinfo=UTC),
)


@pytest.fixture
def carrier() -> FakeCarrier:
    return FakeCarrier()


@pytest.fixture
def publisher() -> FakeEventPublisher:
    return FakeEventPublisher()


@pytest.fixture
def handlers(carrier: FakeCarrier, publisher: FakeEventPublisher) -> FulfillmentHandlers:
    return FulfillmentHandlers(records=FakeFulfillmentRecords(), carrier=carrier, publisher=publisher)


def event_types(publisher: FakeEventPublisher) -> list[str]:
    return [event.event_type for event in publisher.published]


@pytest.mark.anyio
async def test_a_new_order_is_picked_up_and_shipped(
    handlers: FulfillmentHandlers, carrier: FakeCarrier, publisher: FakeEventPublisher
) -> None:
    await handlers.fulfil(ORDER)

    assert carrier.calls == ["order-1"]
    assert event_types(publisher) == [FulfillmentStarted.event_type, FulfillmentShipped.event_type]
    shipped = publisher.published[-1]
    assert isinstance(shipped, FulfillmentShipped)
    assert shipped.tracking_number == "T-order-1"
    assert shipped.attempts == 1


@pytest.mark.anyio
async def test_a_redelivered_order_created_starts_nothing_new(
    handlers: FulfillmentHandlers, carrier: FakeCarrier, publisher: FakeEventPublisher
) -> None:
    await handlers.fulfil(ORDER)
    await handlers.fulfil(ORDER)

    assert carrier.calls == ["order-1"]
    shipped_ids = {event.event_id() for event in publisher.published if isinstance(event, FulfillmentShipped)}
    assert len(shipped_ids) == 1


@pytest.mark.anyio
async def test_a_permanent_rejection_fails_the_order_after_one_call(
    handlers: FulfillmentHandlers, carrier: FakeCarrier, publisher: FakeEventPublisher
) -> None:
    carrier.reject("undeliverable_address")

    await handlers.fulfil(ORDER)

    assert carrier.calls == ["order-1"]
    failed = publisher.published[-1]
    assert isinstance(failed, FulfillmentFailed)
    assert failed.reason == "undeliverable_address"


@pytest.mark.anyio
async def test_an_unavailable_carrier_leaves_the_order_to_be_retried(
    handlers: FulfillmentHandlers, carrier: FakeCarrier, publisher: FakeEventPublisher
) -> None:
    carrier.failure = CarrierUnavailableError("HTTP 503")

    with pytest.raises(CarrierUnavailableError):
        await handlers.fulfil(ORDER)
    carrier.failure = None
    await handlers.fulfil(ORDER)

    assert carrier.calls == ["order-1", "order-1"]
    assert event_types(publisher).count(FulfillmentShipped.event_type) == 1


@pytest.mark.anyio
async def test_a_redelivery_after_a_lost_publish_publishes_the_outcome_again_with_the_same_id(
    handlers: FulfillmentHandlers, carrier: FakeCarrier, publisher: FakeEventPublisher
) -> None:
    await handlers.fulfil(ORDER)
    first = publisher.published[-1]

    await handlers.fulfil(ORDER)  # as if the broker never got the first fulfillment.shipped.v1

    again = publisher.published[-1]
    assert carrier.calls == ["order-1"]
    assert again == first
    assert again.event_id() == first.event_id()
