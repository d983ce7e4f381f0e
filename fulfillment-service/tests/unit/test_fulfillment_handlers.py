"""The use cases on the delivery path against fakes: they record the work and wake the worker, never the carrier."""

from datetime import datetime, timedelta

import httpx
import pytest
from fulfillment_fakes import (
    T0,
    AnswerLostStore,
    FakeClock,
    FakeEventPublisher,
    FakeFulfillmentStore,
    RecordingWaker,
    order_cancelled,
    order_created,
)
from fulfillment_service.adapters.fulfillments import StoredFulfillment
from fulfillment_service.domain import FulfillmentRecord, FulfillmentStatus, Lease, Shipment
from fulfillment_service.handlers import FulfillmentHandlers, UnknownOrderError
from order_contracts.events import FulfillmentDelivered, FulfillmentStarted, OrderCancelled

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=150)


@pytest.fixture
def handlers(
    store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> FulfillmentHandlers:
    return handlers_over(store, publisher, wakes, clock)


def handlers_over(
    store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> FulfillmentHandlers:
    """The handlers of instance "worker-1", over `store`."""
    return FulfillmentHandlers(
        store=store, publisher=publisher, wake_worker=wakes, worker_id="worker-1", pickup_lease=lambda: LEASE,
        clock=clock,
    )  # fmt: skip


async def ship(store: FakeFulfillmentStore, order_id: str) -> None:
    """As the worker would: the carrier created the shipment, and the shipped event went out."""
    stored = await store.get(order_id)
    assert stored is not None
    stored.record.record_shipment(Shipment(shipment_id="shp-1", carrier="Fake Parcel", tracking_number="T-1"), at=T0)
    stored.record.settle(list(stored.record.owed_events))
    await store.save(stored.record, stored, now=T0)


async def test_a_pickup_stores_the_work_leased_to_this_worker_wakes_it_once_and_says_so(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    await handlers.pick_up(order_created("order-1"))

    record = store.record("order-1")
    assert record.status is FulfillmentStatus.PENDING
    assert record.picked_up_at == T0
    assert record.lease == Lease(owner="worker-1", until=T0 + LEASE)
    assert store.index == {"order-1": T0 + LEASE}
    assert wakes.order_ids == ["order-1"]
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]


async def test_a_redelivered_order_is_announced_again_as_first_picked_up_and_wakes_nobody(
    handlers: FulfillmentHandlers,
    store: FakeFulfillmentStore,
    publisher: FakeEventPublisher,
    wakes: RecordingWaker,
    clock: FakeClock,
) -> None:
    await handlers.pick_up(order_created("order-1"))
    first = store.record("order-1")
    clock.advance(timedelta(minutes=5))

    await handlers.pick_up(order_created("order-1"))

    assert wakes.order_ids == ["order-1"]
    assert store.record("order-1") == first
    first_started, again = publisher.published
    assert again == first_started == FulfillmentStarted(order_id="order-1", picked_up_at=T0)
    assert again.event_id() == first_started.event_id()


class RivalPickupStore(FakeFulfillmentStore):
    """Another replica, handed the same order.created.v1, stores its pickup between this one's read and write."""

    def __init__(self, rival: FulfillmentRecord) -> None:
        super().__init__()
        self.rival = rival

    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        if not self.writes:  # the rival's insert lands just before this one
            await super().save(self.rival, None, now=self.rival.picked_up_at)
        await super().save(record, replacing, now=now)


async def test_a_pickup_that_loses_the_race_to_another_replica_keeps_its_record_and_announces_its_pickup(
    publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> None:
    rival = FulfillmentRecord.pick_up(
        order_created("order-1"), at=T0 - timedelta(seconds=1), worker="worker-2", lease_for=LEASE
    )
    store = RivalPickupStore(rival)
    handlers = handlers_over(store, publisher, wakes, clock)

    await handlers.pick_up(order_created("order-1"))

    assert store.writes["order-1"] == [rival]
    assert wakes.order_ids == []
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=rival.picked_up_at)]


async def test_a_batch_pickup_whose_write_committed_but_timed_out_wakes_the_worker_when_delivered_again(
    publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> None:
    """The delivery is answered RETRY; the redelivery finds the order picked up, leased to this very worker, which
    was never woken: without a wake-up now, the first carrier call would wait until the lease runs out."""
    store = AnswerLostStore()
    handlers = handlers_over(store, publisher, wakes, clock)
    with pytest.raises(httpx.ReadTimeout):
        await handlers.pick_up_many([order_created("order-1")])
    assert store.record("order-1").lease == Lease(owner="worker-1", until=T0 + LEASE)
    assert wakes.order_ids == []
    clock.advance(timedelta(seconds=5))  # the sidecar's redelivery

    assert await handlers.pick_up_many([order_created("order-1")]) == {"order-1"}

    assert wakes.order_ids == ["order-1"]
    assert store.record("order-1").picked_up_at == T0
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]


async def test_a_pickup_whose_write_committed_but_timed_out_wakes_the_worker(
    publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> None:
    """The store reports the lost answer as a lost race (the record is there when it reads after the failure): the
    record found is this worker's own pickup, so the worker is woken as for a pickup that went through."""
    store = AnswerLostStore()
    handlers = handlers_over(store, publisher, wakes, clock)

    await handlers.pick_up(order_created("order-1"))

    assert len(store.writes["order-1"]) == 1
    assert wakes.order_ids == ["order-1"]
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]


async def test_a_pickup_whose_announcement_fails_has_stored_the_work_already(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    publisher.failing = ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        await handlers.pick_up(order_created("order-1"))

    assert store.record("order-1").status is FulfillmentStatus.PENDING
    assert wakes.order_ids == ["order-1"]

    publisher.failing = None
    await handlers.pick_up(order_created("order-1"))  # the redelivery
    assert publisher.published == [FulfillmentStarted(order_id="order-1", picked_up_at=T0)]
    assert wakes.order_ids == ["order-1", "order-1"]  # still leased to this worker: woken again, in case it never was


async def test_a_cancel_before_the_pickup_is_remembered_so_the_order_is_never_picked_up_alone_or_in_a_batch(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    """The create was dead-lettered and is replayed after the cancel, or came back from another partition later."""
    for order_id in ("order-alone", "order-in-a-batch"):
        await handlers.cancel(order_cancelled(order_id))
        await handlers.cancel(order_cancelled(order_id))  # a redelivery

    await handlers.pick_up(order_created("order-alone"))
    handled = await handlers.pick_up_many([order_created("order-in-a-batch"), order_created("order-2")])

    assert handled == {"order-in-a-batch", "order-2"}  # handled: the cancelled one is not delivered again
    assert not store.has("order-alone")
    assert not store.has("order-in-a-batch")
    assert store.cancelled_before_pickups == {
        order_id: order_cancelled(order_id) for order_id in ("order-alone", "order-in-a-batch")
    }
    assert set(store.index) == {"order-2"}
    assert wakes.order_ids == ["order-2"]
    assert publisher.published == [FulfillmentStarted(order_id="order-2", picked_up_at=T0)]


class PickedUpMeanwhile(FakeFulfillmentStore):
    """The order's pickup is stored between a cancel's read (no record) and its remembering the cancel."""

    async def remember_cancel(self, cancellation: OrderCancelled) -> None:
        if not self.has(cancellation.order_id):
            await self.insert_many(
                [FulfillmentRecord.pick_up(order_created(cancellation.order_id), at=T0, worker="worker-2",
                                           lease_for=None)],
                now=T0,
            )  # fmt: skip
        await super().remember_cancel(cancellation)


async def test_a_cancel_that_meets_the_pickup_stored_meanwhile_cancels_the_picked_up_record(
    publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> None:
    store = PickedUpMeanwhile()
    handlers = handlers_over(store, publisher, wakes, clock)

    await handlers.cancel(order_cancelled("order-1"))

    assert store.record("order-1").status is FulfillmentStatus.CANCELLED
    assert store.cancelled_before_pickups == {}


async def test_a_cancel_of_a_pending_order_cancels_it_and_wakes_the_worker(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, wakes: RecordingWaker
) -> None:
    await handlers.pick_up(order_created("order-1"))

    await handlers.cancel(order_cancelled("order-1"))
    await handlers.cancel(order_cancelled("order-1"))  # a redelivery changes nothing

    assert store.record("order-1").status is FulfillmentStatus.CANCELLED
    assert wakes.order_ids == ["order-1", "order-1"]


class ShippedMeanwhile(FakeFulfillmentStore):
    """The worker records the shipment between a handler's read and its write, once `interfere` is set."""

    interfere = False

    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        if self.interfere:
            self.interfere = False
            await ship(self, record.order_id)
        await super().save(record, replacing, now=now)


async def test_a_cancel_that_meets_a_concurrent_update_is_applied_to_the_record_as_it_is_now(
    publisher: FakeEventPublisher, wakes: RecordingWaker, clock: FakeClock
) -> None:
    store = ShippedMeanwhile()
    handlers = handlers_over(store, publisher, wakes, clock)
    await handlers.pick_up(order_created("order-1"))
    store.interfere = True

    await handlers.cancel(order_cancelled("order-1"))

    assert store.statuses("order-1") == [
        FulfillmentStatus.PENDING,
        FulfillmentStatus.SHIPPED,
        FulfillmentStatus.VOIDING,
    ]
    assert store.record("order-1").status is FulfillmentStatus.VOIDING


async def test_a_delivery_of_an_order_never_picked_up_raises_unknown_order(handlers: FulfillmentHandlers) -> None:
    with pytest.raises(UnknownOrderError):
        await handlers.record_delivery(order_id="order-unknown", shipment_id="shp-1", delivered_at=T0)


async def test_a_delivery_is_recorded_and_published_once(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    await handlers.pick_up(order_created("order-1"))
    await ship(store, "order-1")
    woken_before = list(wakes.order_ids)
    delivered_at = T0 + timedelta(days=1)

    assert await handlers.record_delivery(order_id="order-1", shipment_id="shp-1", delivered_at=delivered_at)
    assert not await handlers.record_delivery(order_id="order-1", shipment_id="shp-1", delivered_at=delivered_at)

    record = store.record("order-1")
    assert record.status is FulfillmentStatus.DELIVERED
    assert record.owed_events == []
    assert publisher.of_type(FulfillmentDelivered.event_type) == [
        FulfillmentDelivered(order_id="order-1", shipment_id="shp-1", delivered_at=delivered_at)
    ]
    assert wakes.order_ids == woken_before  # nothing left for the worker
    assert "order-1" not in store.index


async def test_a_delivery_the_broker_refuses_stays_owed_and_the_worker_is_woken_to_publish_it(
    handlers: FulfillmentHandlers, store: FakeFulfillmentStore, publisher: FakeEventPublisher, wakes: RecordingWaker
) -> None:
    await handlers.pick_up(order_created("order-1"))
    await ship(store, "order-1")
    publisher.failing = RuntimeError("broker down")

    assert await handlers.record_delivery(order_id="order-1", shipment_id="shp-1", delivered_at=T0)

    record = store.record("order-1")
    assert record.status is FulfillmentStatus.DELIVERED
    assert [event.event_type for event in record.owed_events] == [FulfillmentDelivered.event_type]
    assert wakes.order_ids[-1] == "order-1"
    assert "order-1" in store.index
