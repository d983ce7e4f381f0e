"""The outbox relay against fakes: what is owed goes out, in order per order, and stays owed until it does."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from order_contracts.events import OrderCancelled
from order_service.adapters.outbox import OutboxEntry
from order_service.relay import OutboxRelay
from order_service_fakes import FakeEventPublisher, FakeOrderRepository

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def owed_cancellation(order_id: str, seconds: int) -> OutboxEntry:
    event = OrderCancelled(order_id=order_id, reason=f"r{seconds}", cancelled_at=T0)
    return OutboxEntry(
        event_id=f"{order_id}-{seconds}",
        partition_key=order_id,
        cloud_event=(
            f'{{"specversion":"1.0","id":"{order_id}-{seconds}","source":"t","type":"{event.event_type}",'
            f'"data":{event.model_dump_json()}}}'
        ),
        recorded_at=T0 + timedelta(seconds=seconds),
    )


@pytest.fixture
def outbox() -> FakeOrderRepository:
    return FakeOrderRepository()


@pytest.fixture
def publisher() -> FakeEventPublisher:
    return FakeEventPublisher()


@pytest.fixture
def relay(outbox: FakeOrderRepository, publisher: FakeEventPublisher) -> OutboxRelay:
    return OutboxRelay(outbox, publisher)


def owe(outbox: FakeOrderRepository, *entries: OutboxEntry) -> None:
    outbox.outbox.update((entry.event_id, entry) for entry in entries)


@pytest.mark.anyio
async def test_everything_owed_is_published_oldest_first_per_order_and_settled(
    relay: OutboxRelay, outbox: FakeOrderRepository, publisher: FakeEventPublisher
) -> None:
    owe(outbox, owed_cancellation("a", 2), owed_cancellation("a", 1), owed_cancellation("b", 1))

    assert await relay.relay_once()

    per_order = [entry.event_id for entry in publisher.entries if entry.partition_key == "a"]
    assert per_order == ["a-1", "a-2"]
    assert {entry.event_id for entry in publisher.entries} == {"a-1", "a-2", "b-1"}
    assert outbox.outbox == {}
    assert relay.status.publishing == "ok"


@pytest.mark.anyio
async def test_while_the_broker_refuses_everything_stays_owed_and_the_status_says_so(
    relay: OutboxRelay, outbox: FakeOrderRepository, publisher: FakeEventPublisher
) -> None:
    owe(outbox, owed_cancellation("a", 1))
    publisher.failing = ConnectionError("broker down")

    assert not await relay.relay_once()

    assert set(outbox.outbox) == {"a-1"}
    assert relay.status.publishing == "failing"
    assert relay.status.owed == 1
    assert "broker down" in (relay.status.last_error or "")

    publisher.failing = None
    assert await relay.relay_once()
    assert outbox.outbox == {}
    assert relay.status.publishing == "ok"


@pytest.mark.anyio
async def test_an_orders_later_event_never_overtakes_an_earlier_one_that_failed(
    relay: OutboxRelay, outbox: FakeOrderRepository, publisher: FakeEventPublisher
) -> None:
    class RefusesFirstOfA(FakeEventPublisher):
        async def publish(self, entry: OutboxEntry) -> None:
            if entry.event_id == "a-1":
                raise ConnectionError("timeout")
            await super().publish(entry)

    refusing = RefusesFirstOfA()
    relay.publisher = refusing
    owe(outbox, owed_cancellation("b", 0), owed_cancellation("a", 1), owed_cancellation("a", 2))

    assert not await relay.relay_once()

    assert [entry.event_id for entry in refusing.entries] == ["b-0"]
    assert set(outbox.outbox) == {"a-1", "a-2"}


@pytest.mark.anyio
async def test_while_the_oldest_event_is_refused_no_other_order_is_tried(
    relay: OutboxRelay, outbox: FakeOrderRepository
) -> None:
    class CountingRefusals(FakeEventPublisher):
        attempts = 0

        async def publish(self, entry: OutboxEntry) -> None:
            self.attempts += 1
            raise ConnectionError("broker paused")

    refusing = CountingRefusals()
    relay.publisher = refusing
    owe(outbox, *(owed_cancellation(f"order-{index}", index) for index in range(50)))

    assert not await relay.relay_once()

    assert refusing.attempts == 1
    assert len(outbox.outbox) == 50


@pytest.mark.anyio
@pytest.mark.parametrize("steps_between", range(4))
async def test_the_relay_stops_when_cancelled_just_as_it_is_notified(
    outbox: FakeOrderRepository, publisher: FakeEventPublisher, steps_between: int
) -> None:
    """The app's shutdown cancels run() and awaits it: a notification at that moment must not swallow the cancel."""
    relay = OutboxRelay(outbox, publisher, scan_interval=3600)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(3):
            await asyncio.sleep(0)  # let it reach its wait
        relay.notify()
        for _ in range(steps_between):
            await asyncio.sleep(0)  # where the wake-up and the cancel meet
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)

        assert task in done, "run() went on after it was cancelled"
        assert task.cancelled()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
