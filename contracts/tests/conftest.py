"""One example event per type in EVENT_MODELS: tests that take `event_example` run once per event type."""

from datetime import UTC, datetime

import pytest
from order_contracts.events import (
    EVENT_MODELS,
    Address,
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
    OrderCancelled,
    OrderCreated,
)

AT = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
ORDER_ID = "ord-0001"

EXAMPLES: tuple[EventData, ...] = (
    OrderCreated(
        order_id=ORDER_ID,
        customer=Customer(
            id="cus-42",
            name="Ada Lovelace",
            email="ada@example.com",
            shipping_address=Address(line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"),
        ),
        items=[LineItem(sku="SKU-1", quantity=2, unit_price="9.99"), LineItem(sku="SKU-2", quantity=1, unit_price="5")],
        currency="EUR",
        total="2498",
        created_at=AT,
    ),
    OrderCancelled(order_id=ORDER_ID, reason="changed my mind", cancelled_at=AT),
    FulfillmentStarted(order_id=ORDER_ID, picked_up_at=AT),
    FulfillmentAttemptFailed(
        order_id=ORDER_ID,
        attempt=1,
        error="carrier answered 503",
        failed_at=AT,
        next_attempt_at=datetime(2026, 3, 14, 9, 27, 23, tzinfo=UTC),
    ),
    FulfillmentShipped(
        order_id=ORDER_ID, carrier="mock", tracking_number="TRK-1", shipment_id="shp-1", shipped_at=AT, attempts=1
    ),
    FulfillmentFailed(order_id=ORDER_ID, reason="carrier rejected the address", failed_at=AT, attempts=3),
    FulfillmentVoided(order_id=ORDER_ID, shipment_id="shp-1", voided_at=AT),
    FulfillmentVoidRefused(
        order_id=ORDER_ID, shipment_id="shp-1", reason="shipment shp-1 is already delivered", refused_at=AT
    ),
    FulfillmentDelivered(order_id=ORDER_ID, shipment_id="shp-1", delivered_at=AT),
)


@pytest.fixture(params=EVENT_MODELS, ids=lambda model: model.event_type)
def event_example(request: pytest.FixtureRequest) -> EventData:
    model: type[EventData] = request.param
    example = next((event for event in EXAMPLES if type(event) is model), None)
    if example is None:
        pytest.fail(f"no example {model.__name__} in contracts/tests/conftest.py EXAMPLES: add one", pytrace=False)
    return example
