"""The fulfillment record's rules: each transition, the events it owes, and when a worker should look again."""

from datetime import timedelta

import pytest
from fulfillment_fakes import T0, order_created
from fulfillment_service.domain import (
    CARRIER_UNAVAILABLE,
    OWED_EVENTS_GRACE,
    FulfillmentRecord,
    FulfillmentStatus,
    Lease,
    RetryPolicy,
    Shipment,
    ShipmentNotRecordedError,
)
from order_contracts.events import (
    FulfillmentAttemptFailed,
    FulfillmentDelivered,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentVoided,
    FulfillmentVoidRefused,
)

LEASE = timedelta(seconds=150)
POLICY = RetryPolicy(
    first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=60), give_up_after=timedelta(hours=1)
)
SHIPMENT = Shipment(shipment_id="shp-1", carrier="Fake Parcel", tracking_number="T-1")


def picked_up() -> FulfillmentRecord:
    return FulfillmentRecord.pick_up(order_created("order-1"), at=T0, worker="worker-1", lease_for=LEASE)


def shipped() -> FulfillmentRecord:
    record = picked_up()
    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=1))
    record.settle(list(record.owed_events))
    return record


def voiding() -> FulfillmentRecord:
    record = shipped()
    record.cancel()
    return record


def test_a_picked_up_order_is_leased_to_the_worker_that_picked_it_up_and_due_at_once() -> None:
    record = picked_up()

    assert record.status is FulfillmentStatus.PENDING
    assert record.lease == Lease(owner="worker-1", until=T0 + LEASE)
    assert record.is_due(T0)
    assert record.is_leased_to("worker-1", T0)
    assert not record.is_leased_to("worker-1", T0 + LEASE)
    assert not record.is_leased_to_another("worker-1", T0)
    assert record.is_leased_to_another("worker-2", T0)
    assert not record.is_leased_to_another("worker-2", T0 + LEASE)
    assert record.attempts == 0
    assert record.owed_events == []


def test_a_created_shipment_ships_the_order_and_owes_one_shipped_event() -> None:
    record = picked_up()

    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=1))

    assert record.status is FulfillmentStatus.SHIPPED
    assert record.shipment == SHIPMENT
    assert record.lease is None
    assert record.next_attempt_at is None
    assert record.attempts == 1
    assert record.owed_events == [
        FulfillmentShipped(
            order_id="order-1",
            carrier="Fake Parcel",
            tracking_number="T-1",
            shipment_id="shp-1",
            shipped_at=T0 + timedelta(seconds=1),
            attempts=1,
        )
    ]


def test_shipping_after_failed_attempts_counts_every_attempt() -> None:
    record = picked_up()
    record.record_failed_attempt("HTTP 503", at=T0, policy=POLICY)
    record.record_failed_attempt("timeout", at=T0 + timedelta(seconds=2), policy=POLICY)

    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=6))

    [shipped_event] = [event for event in record.owed_events if isinstance(event, FulfillmentShipped)]
    assert shipped_event.attempts == 3
    assert record.attempts == 3


def test_hearing_the_same_shipment_again_changes_nothing() -> None:
    record = picked_up()
    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=1))
    before = record.model_copy(deep=True)

    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=5))

    assert record == before


def test_a_rejection_fails_the_order_with_its_reason_after_one_attempt() -> None:
    record = picked_up()

    record.record_rejection("undeliverable_address", at=T0 + timedelta(seconds=1))

    assert record.status is FulfillmentStatus.FAILED
    assert record.lease is None
    assert record.next_attempt_at is None
    assert record.owed_events == [
        FulfillmentFailed(
            order_id="order-1", reason="undeliverable_address", failed_at=T0 + timedelta(seconds=1), attempts=1
        )
    ]
    assert record.due_at(T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1) + OWED_EVENTS_GRACE


@pytest.mark.parametrize(("attempt", "delay_seconds"), [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (7, 60), (100, 60)])
def test_the_retry_delay_doubles_from_the_first_delay_up_to_the_cap(attempt: int, delay_seconds: int) -> None:
    assert POLICY.delay_after(attempt) == timedelta(seconds=delay_seconds)


def test_an_unavailable_carrier_parks_the_order_and_owes_an_attempt_failed_event_per_attempt() -> None:
    record = picked_up()
    failed_at = [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=6)]

    for at in failed_at:
        record.record_failed_attempt(f"HTTP 503 at {at}", at=at, policy=POLICY)

    assert record.status is FulfillmentStatus.PENDING
    assert record.lease is None
    assert record.attempts == 3
    assert record.last_error == f"HTTP 503 at {failed_at[2]}"
    assert record.next_attempt_at == failed_at[2] + timedelta(seconds=8)
    assert record.owed_events == [
        FulfillmentAttemptFailed(
            order_id="order-1",
            attempt=attempt,
            error=f"HTTP 503 at {at}",
            failed_at=at,
            next_attempt_at=at + timedelta(seconds=delay),
        )
        for attempt, at, delay in zip((1, 2, 3), failed_at, (2, 4, 8), strict=True)
    ]
    assert len({event.event_id() for event in record.owed_events}) == 3
    assert not record.is_due(failed_at[2] + timedelta(seconds=7))
    assert record.is_due(failed_at[2] + timedelta(seconds=8))


def test_the_next_attempt_is_never_further_off_than_the_max_delay() -> None:
    record = picked_up()
    at = T0
    for _ in range(10):
        record.record_failed_attempt("HTTP 503", at=at, policy=POLICY)
        assert record.next_attempt_at is not None
        at = record.next_attempt_at

    last = record.owed_events[-1]
    assert isinstance(last, FulfillmentAttemptFailed)
    assert last.attempt == 10
    assert last.next_attempt_at is not None
    assert last.next_attempt_at - last.failed_at == POLICY.max_delay


def test_just_before_give_up_after_a_failed_attempt_still_parks_the_order() -> None:
    record = picked_up()

    record.record_failed_attempt("HTTP 503", at=T0 + POLICY.give_up_after - timedelta(seconds=1), policy=POLICY)

    assert record.status is FulfillmentStatus.PENDING
    assert record.next_attempt_at is not None


def test_a_failed_attempt_once_give_up_after_has_passed_since_pickup_fails_the_order() -> None:
    record = picked_up()
    record.record_failed_attempt("HTTP 503", at=T0, policy=POLICY)
    record.settle(list(record.owed_events))
    gave_up_at = T0 + POLICY.give_up_after

    record.record_failed_attempt("HTTP 503", at=gave_up_at, policy=POLICY)

    assert record.status is FulfillmentStatus.FAILED
    assert record.next_attempt_at is None
    assert record.attempts == 2
    assert record.owed_events == [
        FulfillmentAttemptFailed(
            order_id="order-1", attempt=2, error="HTTP 503", failed_at=gave_up_at, next_attempt_at=None
        ),
        FulfillmentFailed(order_id="order-1", reason=CARRIER_UNAVAILABLE, failed_at=gave_up_at, attempts=2),
    ]
    assert CARRIER_UNAVAILABLE == "carrier unavailable"
    assert record.unheard_call  # the failed attempts may have created a shipment: it is looked for, and voided
    assert record.needs_work()


def test_a_cancel_while_pending_cancels_without_an_event_and_keeps_the_lease_of_a_call_in_progress() -> None:
    record = picked_up()

    record.cancel()

    assert record.status is FulfillmentStatus.CANCELLED
    assert record.next_attempt_at is None
    assert record.owed_events == []
    assert record.lease == Lease(owner="worker-1", until=T0 + LEASE)
    assert record.unheard_call  # leased: a call may be under way; if its answer is lost, the carrier is asked
    assert record.needs_work()


def test_a_cancel_before_any_carrier_call_leaves_nothing_to_look_for() -> None:
    record = picked_up()
    record.lease = None  # never claimed by a worker, never called

    record.cancel()

    assert record.status is FulfillmentStatus.CANCELLED
    assert not record.unheard_call
    assert not record.needs_work()
    assert record.due_at(T0) is None


def test_a_shipment_nobody_heard_of_is_voided_after_a_cancel_and_reported() -> None:
    record = picked_up()
    record.record_failed_attempt("timeout", at=T0 + timedelta(seconds=10), policy=POLICY)
    record.settle(list(record.owed_events))
    record.cancel()

    record.record_void(SHIPMENT, at=T0 + timedelta(seconds=20))

    assert record.status is FulfillmentStatus.VOIDED
    assert not record.unheard_call
    assert record.shipment == SHIPMENT
    assert record.owed_events == [
        FulfillmentVoided(order_id="order-1", shipment_id=SHIPMENT.shipment_id, voided_at=T0 + timedelta(seconds=20))
    ]
    assert not record.needs_work()


def test_a_failed_order_whose_unheard_shipment_is_voided_stays_failed() -> None:
    record = picked_up()
    record.record_failed_attempt("timeout", at=T0 + POLICY.give_up_after, policy=POLICY)

    record.record_void(SHIPMENT, at=T0 + POLICY.give_up_after)

    assert record.status is FulfillmentStatus.FAILED
    assert record.owed_events[-1] == FulfillmentVoided(
        order_id="order-1", shipment_id=SHIPMENT.shipment_id, voided_at=T0 + POLICY.give_up_after
    )


def test_a_delivery_report_for_a_shipment_nobody_heard_of_is_to_be_sent_again_after_the_search() -> None:
    record = picked_up()
    record.cancel()

    with pytest.raises(ShipmentNotRecordedError):
        record.record_delivery(shipment_id="shp-unheard", at=T0)

    record.record_void(SHIPMENT, at=T0)
    record.record_delivery(shipment_id=SHIPMENT.shipment_id, at=T0)  # voided now: a late report changes nothing
    assert record.status is FulfillmentStatus.VOIDED


def test_when_the_carrier_has_nothing_for_the_order_there_is_nothing_left_to_do() -> None:
    record = picked_up()
    record.cancel()

    record.record_nothing_found()

    assert (record.status, record.unheard_call, record.lease) == (FulfillmentStatus.CANCELLED, False, None)
    assert record.owed_events == []
    assert record.due_at(T0) is None


def test_a_shipment_heard_after_the_cancel_is_to_be_voided_and_is_not_reported_shipped() -> None:
    record = picked_up()
    record.cancel()

    record.record_shipment(SHIPMENT, at=T0 + timedelta(seconds=1))

    assert record.status is FulfillmentStatus.VOIDING
    assert record.shipment == SHIPMENT
    assert record.lease is None
    assert record.owed_events == []
    assert record.is_due(T0 + timedelta(seconds=1))


def test_a_carrier_answer_after_the_order_left_pending_only_drops_the_lease() -> None:
    record = picked_up()
    record.cancel()
    cancelled = record.model_copy(deep=True)

    record.record_rejection("undeliverable_address", at=T0 + timedelta(seconds=1))
    record.record_failed_attempt("HTTP 503", at=T0 + timedelta(seconds=1), policy=POLICY)

    assert record.lease is None
    assert record.model_copy(update={"lease": cancelled.lease}) == cancelled


def test_a_cancel_after_shipping_is_to_void_the_shipment() -> None:
    record = shipped()

    record.cancel()

    assert record.status is FulfillmentStatus.VOIDING
    assert record.owed_events == []
    assert record.is_due(T0 + timedelta(seconds=2))


def test_a_cancel_of_a_finished_order_changes_nothing() -> None:
    record = picked_up()
    record.record_rejection("undeliverable_address", at=T0)
    before = record.model_copy(deep=True)

    record.cancel()

    assert record == before


def test_a_void_voids_the_order_and_owes_one_voided_event() -> None:
    record = voiding()

    record.record_void(SHIPMENT, at=T0 + timedelta(seconds=5))
    record.record_void(SHIPMENT, at=T0 + timedelta(seconds=9))

    assert record.status is FulfillmentStatus.VOIDED
    assert record.lease is None
    assert record.owed_events == [
        FulfillmentVoided(order_id="order-1", shipment_id="shp-1", voided_at=T0 + timedelta(seconds=5))
    ]
    assert not record.needs_work()


def test_a_void_that_could_not_reach_the_carrier_is_retried_with_backoff_and_never_given_up() -> None:
    record = voiding()
    at = T0 + POLICY.give_up_after * 2

    record.record_failed_void("HTTP 503", at=at, policy=POLICY)
    record.record_failed_void("HTTP 503", at=at, policy=POLICY)

    assert record.status is FulfillmentStatus.VOIDING
    assert record.void_attempts == 2
    assert record.next_attempt_at == at + timedelta(seconds=4)
    assert record.owed_events == []


def test_a_void_the_carrier_refuses_is_asked_again_with_backoff_and_never_given_up() -> None:
    """The shipment is live (delivered already, say): the order must not look voided, and the void is asked for
    again, as after a void that could not reach the carrier."""
    record = voiding()
    at = T0 + POLICY.give_up_after * 2

    record.record_void_refused(SHIPMENT, "shipment shp-1 is already delivered", at=at, policy=POLICY)

    assert record.status is FulfillmentStatus.VOIDING
    assert record.needs_work()
    assert (record.void_attempts, record.last_error) == (1, "shipment shp-1 is already delivered")
    assert record.next_attempt_at == at + POLICY.first_delay
    assert record.owed_events == [
        FulfillmentVoidRefused(
            order_id="order-1", shipment_id="shp-1", reason="shipment shp-1 is already delivered", refused_at=at
        )
    ]


def test_a_void_refused_again_owes_no_second_event_and_backs_off_further() -> None:
    record = voiding()
    record.record_void_refused(SHIPMENT, "already delivered", at=T0, policy=POLICY)
    record.settle(list(record.owed_events))
    later = T0 + timedelta(minutes=1)

    record.record_void_refused(SHIPMENT, "already delivered", at=later, policy=POLICY)

    assert record.owed_events == []
    assert record.void_attempts == 2
    assert record.next_attempt_at == later + POLICY.delay_after(2)


def test_a_void_refused_then_granted_ends_voided() -> None:
    record = voiding()
    record.record_void_refused(SHIPMENT, "label in use", at=T0, policy=POLICY)
    record.settle(list(record.owed_events))

    record.record_void(SHIPMENT, at=T0 + timedelta(seconds=2))

    assert record.status is FulfillmentStatus.VOIDED
    assert not record.needs_work()
    assert record.owed_events == [
        FulfillmentVoided(order_id="order-1", shipment_id="shp-1", voided_at=T0 + timedelta(seconds=2))
    ]


def test_a_refusal_of_an_order_with_nothing_left_to_void_changes_nothing_but_the_lease() -> None:
    record = shipped()  # not cancelled: a late answer to a void that is no longer wanted
    before = record.model_copy(deep=True)

    record.record_void_refused(SHIPMENT, "already delivered", at=T0, policy=POLICY)

    assert record == before.model_copy(update={"lease": None})


def test_a_delivery_report_before_the_shipment_is_recorded_is_refused_for_now() -> None:
    record = picked_up()

    with pytest.raises(ShipmentNotRecordedError):
        record.record_delivery(shipment_id="shp-1", at=T0)

    assert record.status is FulfillmentStatus.PENDING


def test_a_delivery_after_shipping_delivers_the_order_and_owes_one_delivered_event() -> None:
    record = shipped()
    delivered_at = T0 + timedelta(days=1)

    record.record_delivery(shipment_id="shp-1", at=delivered_at)

    assert record.status is FulfillmentStatus.DELIVERED
    assert record.owed_events == [
        FulfillmentDelivered(order_id="order-1", shipment_id="shp-1", delivered_at=delivered_at)
    ]


def test_a_repeated_delivery_report_changes_nothing() -> None:
    record = shipped()
    record.record_delivery(shipment_id="shp-1", at=T0 + timedelta(days=1))
    before = record.model_copy(deep=True)

    record.record_delivery(shipment_id="shp-1", at=T0 + timedelta(days=2))

    assert record == before


def test_a_delivery_report_for_another_shipment_changes_nothing() -> None:
    record = shipped()
    before = record.model_copy(deep=True)

    record.record_delivery(shipment_id="shp-other", at=T0 + timedelta(days=1))

    assert record == before


def test_settle_forgets_only_the_published_events() -> None:
    record = picked_up()
    record.record_failed_attempt("HTTP 503", at=T0, policy=POLICY)
    record.record_failed_attempt("HTTP 503", at=T0 + timedelta(seconds=2), policy=POLICY)
    first, second = record.owed_events

    record.settle([first])

    assert record.owed_events == [second]
    record.settle([first])
    assert record.owed_events == [second]


def test_a_leased_order_is_due_when_its_lease_ends() -> None:
    assert picked_up().due_at(T0) == T0 + LEASE


def test_an_order_whose_lease_ran_out_is_due_at_once() -> None:
    after_the_lease = T0 + LEASE + timedelta(seconds=1)

    assert picked_up().due_at(after_the_lease) == T0


def test_a_parked_order_is_due_at_its_next_attempt() -> None:
    record = picked_up()
    record.record_failed_attempt("HTTP 503", at=T0, policy=POLICY)
    record.settle(list(record.owed_events))

    assert record.due_at(T0) == T0 + timedelta(seconds=2)


def test_an_order_with_nothing_left_to_do_is_never_due() -> None:
    assert shipped().due_at(T0) is None


def test_owed_events_make_an_order_due_within_the_grace_at_the_latest() -> None:
    now = T0 + timedelta(seconds=1)
    finished = picked_up()
    finished.record_rejection("undeliverable_address", at=now)
    parked_far = picked_up()
    for _ in range(6):
        parked_far.record_failed_attempt("HTTP 503", at=now, policy=POLICY)
    leased_briefly = FulfillmentRecord.pick_up(
        order_created("order-1"), at=T0, worker="worker-1", lease_for=timedelta(seconds=5)
    )
    leased_briefly.record_failed_attempt("HTTP 503", at=T0, policy=POLICY)
    leased_briefly.claim("worker-1", now=now, lease_for=timedelta(seconds=5))

    assert finished.due_at(now) == now + OWED_EVENTS_GRACE
    assert parked_far.next_attempt_at == now + timedelta(seconds=60)
    assert parked_far.due_at(now) == now + OWED_EVENTS_GRACE
    assert leased_briefly.owed_events
    assert leased_briefly.due_at(now) == now + timedelta(seconds=5)
