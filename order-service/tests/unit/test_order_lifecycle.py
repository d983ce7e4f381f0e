"""Folding fulfillment progress into an order: idempotent per event, ordered by status rank, final is final."""

from datetime import UTC, datetime, timedelta

import pytest
from order_contracts.events import (
    Address,
    Customer,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentStarted,
    LineItem,
    OrderCreated,
)
from order_service.domain import Order, OrderStatus, order_total

T0 = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
CUSTOMER = Customer(
    id="cust-42",
    name="Jane Doe",
    email="jane@example.com",
    shipping_address=Address(line1="1 Example Street", city="London", postal_code="SW1A 1AA", country="GB"),
)


def accepted_order() -> Order:
    return Order.accept(
        order_id="order-1",
        customer=CUSTOMER,
        items=[LineItem(sku="BOOK-123", quantity=2, unit_price="12.50")],
        currency="GBP",
        minor_units=2,
        at=T0,
    )


def started(at: datetime = T0 + timedelta(seconds=1)) -> FulfillmentStarted:
    return FulfillmentStarted(order_id="order-1", picked_up_at=at)


def shipped(at: datetime = T0 + timedelta(seconds=2)) -> FulfillmentShipped:
    return FulfillmentShipped(
        order_id="order-1", carrier="Acme", tracking_number="AP1", shipment_id="shp-1", shipped_at=at, attempts=1
    )


def statuses(order: Order) -> list[OrderStatus]:
    return [entry.status for entry in order.history]


def test_an_accepted_order_is_pending_with_its_exact_total() -> None:
    order = accepted_order()

    assert order.status is OrderStatus.PENDING
    assert order.total == "25.00"
    assert statuses(order) == [OrderStatus.PENDING]
    assert order.fulfillment is None


@pytest.mark.parametrize(
    ("lines", "minor_units", "total"),
    [
        ([(1, "0.10"), (1, "0.20")], 2, "0.30"),  # binary floats would give 0.30000000000000004
        ([(3, "1000")], 0, "3000"),
        ([(3, "19.99")], 2, "59.97"),
    ],
)
def test_totals_are_exact_decimal_sums(lines: list[tuple[int, str]], minor_units: int, total: str) -> None:
    items = [
        LineItem(sku=f"SKU-{index}", quantity=quantity, unit_price=price)
        for index, (quantity, price) in enumerate(lines)
    ]

    assert order_total(items, minor_units) == total


def test_progress_in_order_moves_the_status_and_fills_the_fulfillment_block() -> None:
    order = accepted_order()

    assert order.fold(started(), event_id="e1")
    assert order.fold(shipped(), event_id="e2")

    assert order.status is OrderStatus.SHIPPED
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED]
    assert order.fulfillment is not None
    assert order.fulfillment.tracking_number == "AP1"
    assert order.fulfillment.picked_up_at == T0 + timedelta(seconds=1)
    assert order.updated_at == T0 + timedelta(seconds=2)


def test_the_same_event_twice_changes_nothing_the_second_time() -> None:
    order = accepted_order()
    order.fold(started(), event_id="e1")
    before = order.model_copy(deep=True)

    assert not order.fold(started(), event_id="e1")
    assert order == before


def test_a_late_processing_joins_the_history_in_rank_order_without_moving_shipped_back() -> None:
    order = accepted_order()

    order.fold(shipped(), event_id="e2")
    order.fold(started(), event_id="e1")

    assert order.status is OrderStatus.SHIPPED
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED]


def test_a_final_status_is_never_left() -> None:
    order = accepted_order()
    order.fold(FulfillmentFailed(order_id="order-1", reason="rejected", failed_at=T0, attempts=1), event_id="f")

    order.fold(shipped(), event_id="e2")

    assert order.status is OrderStatus.FAILED
    assert order.fulfillment is not None
    assert order.fulfillment.failure_reason == "rejected"


def test_events_that_are_not_fulfillment_progress_are_not_folded() -> None:
    order = accepted_order()
    created = OrderCreated(
        order_id="order-1", customer=CUSTOMER, items=order.items, currency="GBP", total="25.00", created_at=T0
    )

    assert not order.fold(created, event_id="c")
    assert order.applied_event_ids == []
