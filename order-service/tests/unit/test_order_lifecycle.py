"""Folding fulfillment progress into an order: idempotent per event, ordered by status rank, final is final."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from order_contracts.events import (
    Address,
    Customer,
    FulfillmentAttemptFailed,
    FulfillmentDelivered,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentStarted,
    FulfillmentVoided,
    FulfillmentVoidRefused,
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


def shipped(at: datetime = T0 + timedelta(seconds=2), attempts: int = 1) -> FulfillmentShipped:
    return FulfillmentShipped(
        order_id="order-1", carrier="Acme", tracking_number="AP1", shipment_id="shp-1", shipped_at=at, attempts=attempts
    )


def attempt_failed(attempt: int, *, next_attempt: bool = True) -> FulfillmentAttemptFailed:
    """Attempt n fails n seconds after T0; the next one is scheduled 30 s later."""
    failed_at = T0 + timedelta(seconds=attempt)
    return FulfillmentAttemptFailed(
        order_id="order-1",
        attempt=attempt,
        error=f"carrier answered 503 (attempt {attempt})",
        failed_at=failed_at,
        next_attempt_at=failed_at + timedelta(seconds=30) if next_attempt else None,
    )


def delivered(at: datetime = T0 + timedelta(days=2)) -> FulfillmentDelivered:
    return FulfillmentDelivered(order_id="order-1", shipment_id="shp-1", delivered_at=at)


def voided(at: datetime = T0 + timedelta(seconds=5)) -> FulfillmentVoided:
    return FulfillmentVoided(order_id="order-1", shipment_id="shp-1", voided_at=at)


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


@pytest.mark.parametrize("arrival", list(itertools.permutations(["s", "sh", "d"])), ids="-".join)
def test_a_delivered_order_has_its_whole_history_whatever_order_its_progress_came_in(arrival: tuple[str, ...]) -> None:
    """Among them a pickup announced after delivery: fulfillment crashed between its pickup and
    `fulfillment.started.v1`, shipped after its restart, and only then did the redelivered create have the pickup
    announced. The history read [pending, shipped, delivered] (a drill's audit found it)."""
    events = {"s": started(), "sh": shipped(), "d": delivered()}
    order = accepted_order()

    for event_id in arrival:
        assert order.fold(events[event_id], event_id=event_id)

    assert order.status is OrderStatus.DELIVERED
    assert statuses(order) == [
        OrderStatus.PENDING,
        OrderStatus.PROCESSING,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
    ]
    assert [entry.at for entry in order.history] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=2),
                                                     T0 + timedelta(days=2)]  # fmt: skip


def test_a_pickup_announced_after_the_order_failed_joins_its_history_and_nothing_else_does() -> None:
    order = accepted_order()
    order.fold(FulfillmentFailed(order_id="order-1", reason="address", failed_at=T0 + timedelta(seconds=5), attempts=1),
               event_id="f")  # fmt: skip
    order.fold(started(), event_id="s")
    order.fold(shipped(), event_id="sh")  # never after a failure; were it to come, it is not the order's history

    assert order.status is OrderStatus.FAILED
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.FAILED]


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


def test_a_failed_attempt_keeps_the_order_in_processing_with_its_error_and_the_next_attempt() -> None:
    order = accepted_order()

    assert order.fold(attempt_failed(1), event_id="a1")

    assert order.status is OrderStatus.PROCESSING
    assert order.history[-1].at == T0 + timedelta(seconds=1)
    assert order.fulfillment is not None
    assert order.fulfillment.attempts == 1
    assert order.fulfillment.last_error == "carrier answered 503 (attempt 1)"
    assert order.fulfillment.next_attempt_at == T0 + timedelta(seconds=31)
    assert order.updated_at == T0 + timedelta(seconds=1)


def test_a_later_failed_attempt_replaces_the_error_and_the_next_attempt() -> None:
    order = accepted_order()
    order.fold(started(), event_id="s")

    order.fold(attempt_failed(1), event_id="a1")
    order.fold(attempt_failed(2), event_id="a2")

    assert order.fulfillment is not None
    assert order.fulfillment.attempts == 2
    assert order.fulfillment.last_error == "carrier answered 503 (attempt 2)"
    assert order.fulfillment.next_attempt_at == T0 + timedelta(seconds=32)
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING]


def test_a_late_older_failed_attempt_does_not_overwrite_a_newer_one() -> None:
    order = accepted_order()
    order.fold(attempt_failed(2), event_id="a2")

    assert order.fold(attempt_failed(1), event_id="a1")  # recorded as seen, but older than what is known

    assert order.fulfillment is not None
    assert order.fulfillment.attempts == 2
    assert order.fulfillment.last_error == "carrier answered 503 (attempt 2)"
    assert order.fulfillment.next_attempt_at == T0 + timedelta(seconds=32)


def test_a_redelivered_failed_attempt_changes_nothing() -> None:
    order = accepted_order()
    order.fold(attempt_failed(1), event_id="a1")
    before = order.model_copy(deep=True)

    assert not order.fold(attempt_failed(1), event_id="a1")
    assert order == before


def test_shipping_after_failed_attempts_clears_the_next_attempt_and_keeps_the_last_error() -> None:
    order = accepted_order()
    order.fold(attempt_failed(1), event_id="a1")

    order.fold(shipped(attempts=2), event_id="sh")

    assert order.status is OrderStatus.SHIPPED
    assert order.fulfillment is not None
    assert order.fulfillment.attempts == 2
    assert order.fulfillment.next_attempt_at is None
    assert order.fulfillment.last_error == "carrier answered 503 (attempt 1)"


def test_giving_up_clears_the_next_attempt() -> None:
    order = accepted_order()
    order.fold(attempt_failed(3), event_id="a3")

    order.fold(FulfillmentFailed(order_id="order-1", reason="gave up", failed_at=T0, attempts=3), event_id="f")

    assert order.status is OrderStatus.FAILED
    assert order.fulfillment is not None
    assert order.fulfillment.next_attempt_at is None
    assert order.fulfillment.last_error == "carrier answered 503 (attempt 3)"


def test_a_failed_attempt_arriving_after_the_shipment_neither_moves_the_status_nor_schedules_another() -> None:
    order = accepted_order()
    order.fold(shipped(attempts=2), event_id="sh")

    order.fold(attempt_failed(1), event_id="a1")
    order.fold(attempt_failed(2), event_id="a2")  # whatever its number says, the order has shipped

    assert order.status is OrderStatus.SHIPPED
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.SHIPPED]
    assert order.fulfillment is not None
    assert order.fulfillment.attempts == 2
    assert order.fulfillment.next_attempt_at is None


def test_delivery_after_shipping_makes_the_order_delivered() -> None:
    order = accepted_order()
    order.fold(started(), event_id="s")
    order.fold(shipped(), event_id="sh")

    assert order.fold(delivered(), event_id="d")

    assert order.status is OrderStatus.DELIVERED
    assert statuses(order) == [
        OrderStatus.PENDING,
        OrderStatus.PROCESSING,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
    ]
    assert order.history[-1].at == T0 + timedelta(days=2)
    assert order.fulfillment is not None
    assert order.fulfillment.delivered_at == T0 + timedelta(days=2)
    assert order.updated_at == T0 + timedelta(days=2)


def test_delivered_is_final_even_when_the_shipment_is_reported_after_it() -> None:
    order = accepted_order()
    order.fold(delivered(), event_id="d")

    order.fold(shipped(), event_id="sh")

    assert order.status is OrderStatus.DELIVERED
    assert order.fulfillment is not None
    assert order.fulfillment.tracking_number == "AP1"


def test_a_redelivered_delivery_changes_nothing() -> None:
    order = accepted_order()
    order.fold(shipped(), event_id="sh")
    order.fold(delivered(), event_id="d")
    before = order.model_copy(deep=True)

    assert not order.fold(delivered(), event_id="d")
    assert order == before


def test_a_voided_shipment_is_recorded_and_the_order_stays_cancelled() -> None:
    order = accepted_order()
    order.fold(started(), event_id="s")
    order.cancel(reason="changed my mind", at=T0 + timedelta(seconds=3))
    history = list(order.history)

    assert order.fold(voided(), event_id="v")

    assert order.status is OrderStatus.CANCELLED
    assert order.history == history
    assert order.fulfillment is not None
    assert order.fulfillment.voided_at == T0 + timedelta(seconds=5)
    assert order.updated_at == T0 + timedelta(seconds=5)


def test_a_refused_void_shows_the_shipment_live_on_the_cancelled_order_until_it_is_voided() -> None:
    order = accepted_order()
    order.fold(started(), event_id="s")
    order.cancel(reason="changed my mind", at=T0 + timedelta(seconds=3))
    history = list(order.history)
    refusal = FulfillmentVoidRefused(
        order_id="order-1", shipment_id="shp-1", reason="already delivered", refused_at=T0 + timedelta(seconds=4)
    )

    assert order.fold(refusal, event_id="r")

    assert order.status is OrderStatus.CANCELLED
    assert order.history == history
    assert order.fulfillment is not None
    assert (order.fulfillment.void_refused_at, order.fulfillment.void_refusal) == (
        T0 + timedelta(seconds=4),
        "already delivered",
    )
    assert order.fulfillment.voided_at is None
    assert order.updated_at == T0 + timedelta(seconds=4)
    before = order.model_copy(deep=True)
    assert not order.fold(refusal, event_id="r")  # redelivered
    assert order == before

    assert order.fold(voided(), event_id="v")  # the carrier voided it at last
    assert order.fulfillment.voided_at == T0 + timedelta(seconds=5)


def test_a_redelivered_void_changes_nothing() -> None:
    order = accepted_order()
    order.cancel(reason="changed my mind", at=T0 + timedelta(seconds=3))
    order.fold(voided(), event_id="v")
    before = order.model_copy(deep=True)

    assert not order.fold(voided(), event_id="v")
    assert order == before


def test_a_shipment_reported_after_the_order_was_cancelled_does_not_revive_it() -> None:
    order = accepted_order()
    order.fold(started(), event_id="s")
    order.cancel(reason="changed my mind", at=T0 + timedelta(seconds=1, milliseconds=500))

    order.fold(shipped(), event_id="sh")

    assert order.status is OrderStatus.CANCELLED
    assert statuses(order) == [OrderStatus.PENDING, OrderStatus.PROCESSING, OrderStatus.CANCELLED]
    assert order.fulfillment is not None
    assert order.fulfillment.shipment_id == "shp-1"  # the shipment that exists, and is to be voided
