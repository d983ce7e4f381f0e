"""The shipping worker against fakes, run as it runs in the app: `run()` in a task, woken by the handlers.

Every wait is on a condition with a deadline (`eventually`); time in the records moves only with the fake clock.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import pytest
import respx
from fulfillment_fakes import (
    T0,
    AnswerLostStore,
    FakeCarrier,
    FakeClock,
    FakeEventPublisher,
    FakeFulfillmentStore,
    eventually,
    order_cancelled,
    order_created,
)
from fulfillment_service.adapters.carrier import AbstractCarrier, DaprInvokedCarrier
from fulfillment_service.domain import (
    CARRIER_UNAVAILABLE,
    OWED_EVENTS_GRACE,
    FulfillmentRecord,
    FulfillmentStatus,
    Lease,
    RetryPolicy,
    Shipment,
)
from fulfillment_service.handlers import FulfillmentHandlers
from fulfillment_service.worker import ShippingWorker, WorkerSettings
from order_contracts.events import (
    FulfillmentAttemptFailed,
    FulfillmentFailed,
    FulfillmentShipped,
    FulfillmentStarted,
    FulfillmentVoided,
    FulfillmentVoidRefused,
)

pytestmark = pytest.mark.anyio

WORKER = "worker-1"
LEASE = timedelta(seconds=150)
POLICY = RetryPolicy(
    first_delay=timedelta(seconds=2), max_delay=timedelta(seconds=60), give_up_after=timedelta(hours=1)
)
PROBE = timedelta(seconds=2)
"""While the carrier is held, one call per this much (fake) time."""
OFTEN = timedelta(milliseconds=5)
"""A poll interval that lets a test see the fake clock's moves picked up at once."""
NEVER = timedelta(hours=1)
"""A poll interval that leaves only the start-up look and wake-ups within a test."""


@dataclass
class Fakes:
    """What the workers of every replica share: the state store, the carrier, the broker and the time."""

    store: FakeFulfillmentStore = field(default_factory=FakeFulfillmentStore)
    carrier: FakeCarrier = field(default_factory=FakeCarrier)
    publisher: FakeEventPublisher = field(default_factory=FakeEventPublisher)
    clock: FakeClock = field(default_factory=FakeClock)

    def worker(
        self,
        worker_id: str = WORKER,
        *,
        poll_interval: timedelta = OFTEN,
        max_concurrent_calls: int = 4,
        carrier: AbstractCarrier | None = None,
    ) -> ShippingWorker:
        """A worker over the shared fakes (over `carrier` instead of the fake one, if given)."""
        settings = WorkerSettings(
            worker_id=worker_id,
            retry_policy=POLICY,
            lease_for=LEASE,
            poll_interval=poll_interval,
            max_concurrent_calls=max_concurrent_calls,
            probe_interval=PROBE,
        )
        return ShippingWorker(self.store, carrier or self.carrier, self.publisher, settings, clock=self.clock)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def worker(fakes: Fakes) -> ShippingWorker:
    return fakes.worker()


@pytest.fixture
def handlers(fakes: Fakes, worker: ShippingWorker) -> FulfillmentHandlers:
    """The delivery path of the same instance: it wakes `worker`."""
    return FulfillmentHandlers(
        store=fakes.store,
        publisher=fakes.publisher,
        wake_worker=worker.wake,
        worker_id=worker.worker_id,
        pickup_lease=worker.pickup_lease,
        clock=fakes.clock,
    )


@asynccontextmanager
async def running(worker: ShippingWorker) -> AsyncIterator[None]:
    task = asyncio.create_task(worker.run(), name=f"worker {worker.worker_id}")
    try:
        yield
    finally:
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        await worker.stop()
        assert task in done, "run() did not stop when cancelled"
        if not task.cancelled():
            task.result()  # run() ended by itself: raise what it raised


def finished(store: FakeFulfillmentStore, order_id: str, status: FulfillmentStatus) -> bool:
    """The order reached `status`, its events went out, and nothing is left for any worker to do."""
    if not store.has(order_id):
        return False
    record = store.record(order_id)
    return record.status is status and not record.owed_events and order_id not in store.index


async def store_leased(store: FakeFulfillmentStore, order_id: str, lease: Lease, *, at: datetime = T0) -> None:
    """An order picked up at `at` by the worker the lease names (as its instance's handlers store it)."""
    record = FulfillmentRecord.pick_up(order_created(order_id), at=at, worker=lease.owner, lease_for=lease.until - at)
    await store.save(record, None, now=at)


async def test_a_woken_order_ships_once_and_its_events_go_out_then_are_settled(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1"]
    assert [event.event_type for event in fakes.publisher.published] == [
        FulfillmentStarted.event_type,
        FulfillmentShipped.event_type,
    ]
    shipped = fakes.publisher.published[-1]
    assert isinstance(shipped, FulfillmentShipped)
    assert shipped.shipment_id == fakes.carrier.shipments["order-1"].shipment_id
    assert shipped.attempts == 1
    assert fakes.store.record("order-1").lease is None
    assert fakes.store.index == {}


async def test_many_orders_woken_at_once_each_ship_once(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    order_ids = [f"order-{index}" for index in range(20)]

    async with running(worker):
        for order_id in order_ids:
            await handlers.pick_up(order_created(order_id))
        await eventually(
            lambda: all(finished(fakes.store, order_id, FulfillmentStatus.SHIPPED) for order_id in order_ids),
            what="every order shipped",
        )

    assert sorted(fakes.carrier.calls) == sorted(order_ids)


async def test_a_rejection_makes_exactly_one_carrier_call_and_fails_the_order(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.reject("undeliverable_address")

    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.FAILED), what="order-1 failed")

    assert fakes.carrier.calls == ["order-1"]
    failed = fakes.publisher.published[-1]
    assert isinstance(failed, FulfillmentFailed)
    assert failed.reason == "undeliverable_address"
    assert failed.attempts == 1


async def test_an_unavailable_carrier_parks_the_order_until_its_next_attempt_then_it_ships(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.be_unavailable("HTTP 503: carrier down")
    next_attempt_at = T0 + POLICY.first_delay

    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(
            lambda: (
                bool(fakes.publisher.of_type(FulfillmentAttemptFailed.event_type))
                and not fakes.store.record("order-1").owed_events
            ),
            what="the failed attempt published and settled",
        )

        parked = fakes.store.record("order-1")
        assert parked.status is FulfillmentStatus.PENDING
        assert parked.next_attempt_at == next_attempt_at
        assert parked.lease is None
        assert fakes.store.index == {"order-1": next_attempt_at}
        assert fakes.publisher.of_type(FulfillmentAttemptFailed.event_type) == [
            FulfillmentAttemptFailed(
                order_id="order-1",
                attempt=1,
                error="HTTP 503: carrier down",
                failed_at=T0,
                next_attempt_at=next_attempt_at,
            )
        ]
        assert fakes.carrier.calls == ["order-1"]

        fakes.carrier.recover()
        fakes.clock.advance(POLICY.first_delay)
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1", "order-1"]
    [shipped] = fakes.publisher.of_type(FulfillmentShipped.event_type)
    assert isinstance(shipped, FulfillmentShipped)
    assert shipped.attempts == 2
    assert shipped.shipped_at == next_attempt_at


async def test_an_order_whose_pickup_committed_but_timed_out_ships_once_redelivered_without_waiting_out_its_lease(
    fakes: Fakes,
) -> None:
    """The fake clock never moves: the carrier is called while the lease the lost write took still lasts."""
    fakes.store = AnswerLostStore()
    worker = fakes.worker(poll_interval=NEVER)  # only wake-ups: the lease keeps the order out of every poll anyway
    handlers = FulfillmentHandlers(
        store=fakes.store, publisher=fakes.publisher, wake_worker=worker.wake, worker_id=worker.worker_id,
        pickup_lease=worker.pickup_lease, clock=fakes.clock,
    )  # fmt: skip

    async with running(worker):
        worker.wake("order-unknown")  # seen once its start-up look at the index is over
        await eventually(lambda: fakes.store.reads == ["order-unknown"], what="the worker past its start-up look")
        with pytest.raises(httpx.ReadTimeout):
            await handlers.pick_up_many([order_created("order-1")])
        assert await handlers.pick_up_many([order_created("order-1")]) == {"order-1"}  # the redelivery
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1"]


async def test_an_order_leased_to_another_worker_is_left_alone_while_the_lease_lasts(
    worker: ShippingWorker, fakes: Fakes
) -> None:
    lease = Lease(owner="worker-2", until=T0 + LEASE)
    await store_leased(fakes.store, "order-1", lease)

    async with running(worker):  # its start-up look reads everything indexed
        worker.wake("order-1")
        await eventually(lambda: fakes.store.reads.count("order-1") >= 2, what="order-1 looked at twice")

    assert fakes.carrier.calls == []
    record = fakes.store.record("order-1")
    assert record.lease == lease
    assert record.status is FulfillmentStatus.PENDING
    assert len(fakes.store.writes["order-1"]) == 1  # only the pickup


async def test_after_a_restart_the_worker_resumes_its_own_leased_work_at_once(fakes: Fakes) -> None:
    before_the_crash = fakes.worker(poll_interval=NEVER)
    await store_leased(fakes.store, "order-1", Lease(owner=WORKER, until=T0 + LEASE))
    fakes.carrier.hold()
    async with running(before_the_crash):
        before_the_crash.wake("order-1")
        await eventually(lambda: fakes.carrier.calls == ["order-1"], what="the carrier called")
    fakes.carrier.release()  # the process died during the call: the record still says it is leased to WORKER
    fakes.clock.advance(timedelta(seconds=10))
    assert fakes.store.record("order-1").lease == Lease(owner=WORKER, until=T0 + LEASE)

    after_the_restart = fakes.worker(poll_interval=NEVER)  # no poll within the test: only the start-up look
    async with running(after_the_restart):
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1", "order-1"]
    assert len(fakes.carrier.shipments) == 1


async def test_an_order_whose_lease_ran_out_is_taken_over_from_the_worker_that_held_it(
    worker: ShippingWorker, fakes: Fakes
) -> None:
    await store_leased(fakes.store, "order-1", Lease(owner="worker-2", until=T0 + LEASE))
    fakes.clock.advance(LEASE + timedelta(seconds=1))

    async with running(worker):
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1"]
    pickup, claim, *_ = fakes.store.writes["order-1"]
    assert pickup.lease is not None
    assert pickup.lease.owner == "worker-2"
    assert claim.lease == Lease(owner=WORKER, until=fakes.clock.now + LEASE)


async def test_events_whose_publish_failed_stay_owed_and_go_out_on_a_later_look(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        fakes.publisher.failing = ConnectionError("broker down")
        await eventually(lambda: bool(fakes.publisher.refused), what="a publish refused")

        refused = fakes.store.record("order-1")
        assert refused.status is FulfillmentStatus.SHIPPED
        assert [event.event_type for event in refused.owed_events] == [FulfillmentShipped.event_type]
        assert fakes.store.index == {"order-1": T0 + OWED_EVENTS_GRACE}

        fakes.publisher.failing = None
        fakes.clock.advance(OWED_EVENTS_GRACE)
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="the events settled")

    assert fakes.carrier.calls == ["order-1"]
    assert fakes.publisher.of_type(FulfillmentShipped.event_type) == refused.owed_events


async def test_a_cancel_during_the_carrier_call_has_the_new_shipment_voided(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.hold()

    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: fakes.carrier.calls == ["order-1"], what="the carrier called")
        await handlers.cancel(order_cancelled("order-1"))
        assert fakes.store.record("order-1").status is FulfillmentStatus.CANCELLED
        fakes.carrier.release()
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.VOIDED), what="order-1 voided")

    statuses = fakes.store.statuses("order-1")
    assert statuses.index(FulfillmentStatus.CANCELLED) < statuses.index(FulfillmentStatus.VOIDING)
    assert statuses[-1] is FulfillmentStatus.VOIDED
    shipment_id = fakes.carrier.shipments["order-1"].shipment_id
    assert fakes.carrier.voids == [shipment_id]
    assert fakes.carrier.voided == {shipment_id}
    assert fakes.publisher.of_type(FulfillmentShipped.event_type) == []
    [voided] = fakes.publisher.of_type(FulfillmentVoided.event_type)
    assert isinstance(voided, FulfillmentVoided)
    assert voided.shipment_id == shipment_id


async def test_a_cancel_after_a_failed_attempt_finds_the_shipment_nobody_heard_of_and_voids_it(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.be_unavailable("HTTP 500: context deadline exceeded")  # a timeout: did the carrier create it?
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: fakes.store.record("order-1").attempts == 1, what="the attempt failed, parked")
        # It did: the carrier stored the shipment, its answer was lost.
        unheard_of = Shipment(shipment_id="shp-unheard", carrier="Fake Parcel", tracking_number="T-unheard")
        fakes.carrier.shipments["order-1"] = unheard_of
        fakes.carrier.recover()

        await handlers.cancel(order_cancelled("order-1"))
        fakes.clock.advance(PROBE)  # the failed attempt closed the gate: the search goes as the next probe
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.VOIDED), what="order-1 voided")

    assert fakes.carrier.finds == ["order-1"]
    assert fakes.carrier.voids == ["shp-unheard"]
    [voided] = fakes.publisher.of_type(FulfillmentVoided.event_type)
    assert isinstance(voided, FulfillmentVoided)
    assert voided.shipment_id == "shp-unheard"
    assert fakes.carrier.calls == ["order-1"]  # no new shipment was attempted after the cancel


async def test_a_cancel_after_a_failed_attempt_that_created_nothing_ends_cancelled_without_a_void(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.be_unavailable("HTTP 503: carrier down")
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: fakes.store.record("order-1").attempts == 1, what="the attempt failed, parked")
        fakes.carrier.recover()

        await handlers.cancel(order_cancelled("order-1"))
        fakes.clock.advance(PROBE)  # the failed attempt closed the gate: the search goes as the next probe
        await eventually(lambda: fakes.carrier.finds == ["order-1"], what="the carrier asked")
        await eventually(lambda: "order-1" not in fakes.store.index, what="nothing left to do")

    record = fakes.store.record("order-1")
    assert (record.status, record.unheard_call) == (FulfillmentStatus.CANCELLED, False)
    assert fakes.carrier.voids == []
    assert fakes.publisher.of_type(FulfillmentVoided.event_type) == []


async def test_a_cancel_after_shipping_voids_the_shipment(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")
        await handlers.cancel(order_cancelled("order-1"))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.VOIDED), what="order-1 voided")

    assert fakes.carrier.voids == [fakes.carrier.shipments["order-1"].shipment_id]
    assert [event.event_type for event in fakes.publisher.published][-2:] == [
        FulfillmentShipped.event_type,
        FulfillmentVoided.event_type,
    ]


async def test_a_void_the_carrier_refuses_is_announced_once_and_asked_again_until_the_carrier_voids_it(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    fakes.carrier.void_refusal = "shipment is already delivered"
    async with running(worker):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")
        shipment_id = fakes.carrier.shipments["order-1"].shipment_id
        await handlers.cancel(order_cancelled("order-1"))
        await eventually(lambda: fakes.carrier.voids == [shipment_id], what="the first void refused")
        await eventually(lambda: not fakes.store.record("order-1").owed_events, what="the refusal announced")
        refused = fakes.store.record("order-1")
        assert (refused.status, refused.void_attempts) == (FulfillmentStatus.VOIDING, 1)
        assert fakes.store.index == {"order-1": fakes.clock.now + POLICY.first_delay}  # asked again, not dropped

        fakes.clock.advance(POLICY.first_delay)
        await eventually(lambda: fakes.carrier.voids == [shipment_id] * 2, what="the second void refused")
        await eventually(lambda: fakes.store.record("order-1").void_attempts == 2, what="the refusal counted")
        fakes.carrier.void_refusal = None
        fakes.clock.advance(POLICY.delay_after(2))
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.VOIDED), what="order-1 voided")

    assert fakes.carrier.voided == {shipment_id}
    assert [event.event_type for event in fakes.publisher.published][-3:] == [
        FulfillmentShipped.event_type,
        FulfillmentVoidRefused.event_type,
        FulfillmentVoided.event_type,
    ]
    [refusal] = fakes.publisher.of_type(FulfillmentVoidRefused.event_type)
    assert isinstance(refusal, FulfillmentVoidRefused)
    assert (refusal.shipment_id, refusal.reason) == (shipment_id, "shipment is already delivered")


async def test_a_cancel_before_the_worker_looked_drops_the_work_without_a_carrier_call(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    await handlers.pick_up(order_created("order-1"))  # the worker is not running yet
    await handlers.cancel(order_cancelled("order-1"))
    assert "order-1" in fakes.store.index  # still leased

    async with running(worker):
        await eventually(
            lambda: finished(fakes.store, "order-1", FulfillmentStatus.CANCELLED), what="the lease dropped"
        )

    assert fakes.carrier.calls == []
    assert fakes.store.record("order-1").lease is None


async def test_a_worker_restarted_after_its_lease_ran_out_claims_the_order_again_so_no_other_replica_calls_too(
    fakes: Fakes,
) -> None:
    await store_leased(fakes.store, "order-1", Lease(owner=WORKER, until=T0 + LEASE))
    fakes.clock.advance(LEASE + timedelta(seconds=1))
    fakes.carrier.hold()
    restarted, other_replica = fakes.worker(WORKER), fakes.worker("worker-2")

    async with running(restarted), running(other_replica):
        await eventually(lambda: bool(fakes.carrier.calls), what="the carrier called")
        # The caller read the order twice (before and after its claim): a third read is the other replica's look.
        await eventually(lambda: fakes.store.reads.count("order-1") >= 3, what="both replicas looked")
        during_the_call = fakes.store.record("order-1")
        fakes.carrier.release()
        await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="order-1 shipped")

    assert fakes.carrier.calls == ["order-1"]
    assert during_the_call.lease is not None
    assert during_the_call.lease.until == fakes.clock.now + LEASE


async def test_an_order_whose_lease_ran_out_while_it_waited_for_a_free_slot_is_not_called_for_twice(
    fakes: Fakes,
) -> None:
    busy = fakes.worker(max_concurrent_calls=1, poll_interval=NEVER)
    other_replica = fakes.worker("worker-2", poll_interval=NEVER)
    handlers = FulfillmentHandlers(
        store=fakes.store, publisher=fakes.publisher, wake_worker=busy.wake, worker_id=WORKER,
        pickup_lease=busy.pickup_lease, clock=fakes.clock,
    )  # fmt: skip
    fakes.carrier.hold()

    async with running(busy):
        await handlers.pick_up(order_created("order-1"))
        await eventually(lambda: fakes.carrier.calls == ["order-1"], what="order-1's call holding the only slot")
        await handlers.pick_up(order_created("order-2"))  # leased to `busy`, whose worker waits for the slot
        await eventually(lambda: fakes.store.reads.count("order-2") >= 1, what="busy's worker looked at order-2")
        fakes.clock.advance(LEASE + timedelta(seconds=1))
        async with running(other_replica):  # takes order-2 over (and finds order-1's lease expired too)
            await eventually(lambda: "order-2" in fakes.carrier.calls, what="the other replica calling for order-2")
            fakes.carrier.release()
            await eventually(lambda: finished(fakes.store, "order-2", FulfillmentStatus.SHIPPED), what="shipped")
            await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.SHIPPED), what="shipped")

    assert fakes.carrier.calls.count("order-2") == 1


@pytest.mark.parametrize("steps_between", range(4))
async def test_the_worker_stops_when_cancelled_just_as_it_is_woken(fakes: Fakes, steps_between: int) -> None:
    """The app's shutdown cancels run() and awaits it: a wake-up at that moment must not swallow the cancellation."""
    worker = fakes.worker(poll_interval=NEVER)
    task = asyncio.create_task(worker.run())
    try:
        worker.wake("order-unknown")
        await eventually(lambda: fakes.store.reads == ["order-unknown"], what="the worker looked, now it waits")

        worker.wake("order-unknown")
        for _ in range(steps_between):
            await asyncio.sleep(0)  # one scheduling step: where the wake-up and the cancel meet
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)

        assert task in done, "run() went on after it was cancelled"
        assert task.cancelled()
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await worker.stop()


async def test_a_backlog_larger_than_one_poll_takes_is_worked_through_poll_by_poll(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a long outage every parked order is due at once: each poll takes a bounded share of the index."""
    monkeypatch.setattr("fulfillment_service.worker.DUE_PER_POLL", 3)
    requested: list[int] = []
    read_due = fakes.store.due

    async def counting_due(now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        due = await read_due(now, limit=limit, first_shard=first_shard)
        requested.append(len(due))
        return due

    monkeypatch.setattr(fakes.store, "due", counting_due)
    order_ids = [f"parked-{index}" for index in range(40)]
    for order_id in order_ids:  # leases of a worker that died: due to anyone once they ran out
        await store_leased(fakes.store, order_id, Lease(owner="gone", until=T0), at=T0 - LEASE)

    async with running(fakes.worker()):
        await eventually(
            lambda: all(finished(fakes.store, order_id, FulfillmentStatus.SHIPPED) for order_id in order_ids),
            what="every parked order shipped",
        )

    assert sorted(fakes.carrier.calls) == sorted(order_ids)
    assert max(requested) <= 3


def attempts_failed(publisher: FakeEventPublisher) -> list[str]:
    """The order id of every `fulfillment.attempt_failed.v1` published."""
    return [event.order_id for event in publisher.of_type(FulfillmentAttemptFailed.event_type)]


async def close_the_gate(handlers: FulfillmentHandlers, fakes: Fakes) -> None:
    """The carrier goes down, and an order ("first") finds out: its attempt fails and the worker holds what follows."""
    fakes.carrier.be_unavailable()
    await handlers.pick_up(order_created("first"))
    await eventually(lambda: attempts_failed(fakes.publisher) == ["first"], what="the first attempt failed")


async def test_while_the_carrier_is_unavailable_orders_due_for_it_are_held_and_one_is_tried_per_probe_interval(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    """Parked orders retried at their own pace each cost a call, a save and an event; during a long outage that took
    both cores. Held, they cost nothing until the carrier is back, then go at once."""
    fakes.carrier.be_unavailable()
    held = [f"held-{index}" for index in range(8)]
    async with running(worker):
        await handlers.pick_up(order_created("first"))
        await eventually(lambda: attempts_failed(fakes.publisher) == ["first"], what="the first attempt failed")
        for order_id in held:
            await handlers.pick_up(order_created(order_id))
        await eventually(  # a second look at each (polls read the held ones again) means the first one is over
            lambda: all(fakes.store.reads.count(order_id) >= 2 for order_id in held), what="each held order looked at"
        )

        assert fakes.carrier.calls == ["first"]
        for order_id in held:
            record = fakes.store.record(order_id)
            assert (record.status, record.attempts, record.lease) == (FulfillmentStatus.PENDING, 0, None)
            assert fakes.store.index[order_id] == T0  # due, for any worker whose carrier answers

        fakes.clock.advance(PROBE)  # "first" is due for its second attempt, the others since their pickup
        await eventually(lambda: len(attempts_failed(fakes.publisher)) == 2, what="one probe failed")
        probed = fakes.carrier.calls[1]
        waiting = [order_id for order_id in ["first", *held] if order_id != probed]
        reads_after_probe = {order_id: fakes.store.reads.count(order_id) for order_id in waiting}
        await eventually(
            lambda: all(fakes.store.reads.count(order_id) > reads_after_probe[order_id] for order_id in waiting),
            what="each waiting order looked at after the probe",
        )
        assert len(fakes.carrier.calls) == 2

        fakes.carrier.recover()
        fakes.clock.advance(PROBE)  # the next probe finds the carrier back, before the probed order's next attempt
        await eventually(
            lambda: all(finished(fakes.store, order_id, FulfillmentStatus.SHIPPED) for order_id in waiting),
            what="every waiting order shipped once the carrier answered",
        )

    after_recovery = fakes.carrier.calls[2:]  # the probed order too, if its own next attempt has come
    assert set(waiting) <= set(after_recovery)
    assert len(after_recovery) == len(set(after_recovery)), "an order called twice"
    assert len(attempts_failed(fakes.publisher)) == 2
    assert {fakes.store.record(order_id).attempts for order_id in held if order_id != probed} == {1}


async def test_an_order_leased_when_the_carrier_became_unavailable_is_held_unleased(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    """Held under its lease, it would wait out the lease after the carrier is back, and keep other replicas off."""
    async with running(worker):
        await close_the_gate(handlers, fakes)
        await store_leased(fakes.store, "leased", Lease(owner=WORKER, until=T0 + LEASE))  # picked up just before
        worker.wake("leased")
        await eventually(lambda: fakes.store.record("leased").lease is None, what="the lease dropped")

    assert fakes.store.index["leased"] == T0
    assert fakes.carrier.calls == ["first"]


async def test_an_order_at_its_give_up_time_gets_its_last_attempt_while_the_carrier_is_held(
    worker: ShippingWorker, handlers: FulfillmentHandlers, fakes: Fakes
) -> None:
    async with running(worker):
        await close_the_gate(handlers, fakes)
        await handlers.pick_up(order_created("held"))
        await eventually(lambda: fakes.store.reads.count("held") >= 2, what="held looked at")

        fakes.clock.advance(POLICY.give_up_after)  # one probe is due, and both orders are at their give-up time
        await eventually(
            lambda: (
                {event.order_id for event in fakes.publisher.of_type(FulfillmentFailed.event_type)} == {"first", "held"}
            ),
            what="both orders failed",
        )

    for order_id in ("first", "held"):
        record = fakes.store.record(order_id)
        assert (record.status, record.last_error) == (FulfillmentStatus.FAILED, "HTTP 503: carrier down")


async def test_a_2xx_whose_body_is_not_a_shipment_is_a_failed_attempt_retried_with_the_same_key_then_given_up(
    fakes: Fakes,
) -> None:
    """The real adapter over a mocked sidecar: a carrier that answers 201 with a body that names no shipment (it may
    have created one) has the order parked and retried with backoff under its one idempotency key, failed at its
    give-up time like any carrier failure, and then searched for, so the shipment it may hold is voided."""
    shipments_url = "http://sidecar.test/v1.0/invoke/carrier/method/shipments"
    created = {"shipment_id": "shp-1", "carrier": "Mock Parcel", "tracking_number": "T-1", "status": "label_created"}
    with respx.mock(assert_all_called=True) as sidecar:
        creates = sidecar.post(shipments_url).respond(201, text="<html>Created</html>")
        sidecar.get(shipments_url, params={"order_id": "order-1"}).respond(200, json=[created])
        voids = sidecar.post(f"{shipments_url}/shp-1/cancel").respond(200, json={**created, "status": "voided"})
        async with httpx.AsyncClient() as http:
            carrier = DaprInvokedCarrier(http, sidecar_url="http://sidecar.test", endpoint="carrier")
            worker = fakes.worker(carrier=carrier)
            handlers = FulfillmentHandlers(
                store=fakes.store, publisher=fakes.publisher, wake_worker=worker.wake, worker_id=WORKER,
                pickup_lease=worker.pickup_lease, clock=fakes.clock,
            )  # fmt: skip
            async with running(worker):
                await handlers.pick_up(order_created("order-1"))
                await eventually(lambda: attempts_failed(fakes.publisher) == ["order-1"], what="the attempt failed")

                parked = fakes.store.record("order-1")
                assert (parked.status, parked.attempts, parked.lease) == (FulfillmentStatus.PENDING, 1, None)
                assert fakes.store.index == {"order-1": T0 + POLICY.first_delay}
                [failed_attempt] = fakes.publisher.of_type(FulfillmentAttemptFailed.event_type)
                assert isinstance(failed_attempt, FulfillmentAttemptFailed)
                assert failed_attempt.error.startswith("HTTP 201, unreadable answer: ")
                assert failed_attempt.next_attempt_at == T0 + POLICY.first_delay

                fakes.clock.advance(POLICY.first_delay)
                await eventually(lambda: len(attempts_failed(fakes.publisher)) == 2, what="the second attempt failed")
                assert fakes.store.record("order-1").next_attempt_at == fakes.clock.now + POLICY.delay_after(2)

                fakes.clock.now = T0 + POLICY.give_up_after
                await eventually(lambda: voids.called, what="the shipment the carrier may hold voided")
                await eventually(lambda: finished(fakes.store, "order-1", FulfillmentStatus.FAILED), what="failed")

    keys = {call.request.headers["Idempotency-Key"] for call in creates.calls}
    assert (creates.call_count, keys) == (3, {"order-order-1"})
    [gave_up] = fakes.publisher.of_type(FulfillmentFailed.event_type)
    assert gave_up == FulfillmentFailed(
        order_id="order-1", reason=CARRIER_UNAVAILABLE, failed_at=T0 + POLICY.give_up_after, attempts=3
    )
    record = fakes.store.record("order-1")
    assert record.last_error is not None
    assert record.last_error.startswith("HTTP 201, unreadable answer: ")
    assert voids.call_count == 1
    [voided] = fakes.publisher.of_type(FulfillmentVoided.event_type)
    assert isinstance(voided, FulfillmentVoided)
    assert voided.shipment_id == "shp-1"
