"""The outbox relay against fakes: what is owed goes out, in order per order, and stays owed until it does."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from order_contracts.events import OrderCancelled
from order_service.adapters.outbox import OutboxEntry, OwedPage
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
        async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
            refused = {entry.event_id: "timeout" for entry in entries if entry.event_id == "a-1"}
            await super().publish([entry for entry in entries if entry.event_id not in refused])
            return refused

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

        async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
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
        relay.notify([owed_cancellation("a", 1)])
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


@pytest.mark.anyio
@pytest.mark.parametrize("page_size", [1, 7, 64])
async def test_a_backlog_larger_than_a_page_drains_with_no_call_larger_than_a_page(
    outbox: FakeOrderRepository, publisher: FakeEventPublisher, page_size: int
) -> None:
    class CountingPages(FakeOrderRepository):
        largest_page = 0

        async def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
            async for page in super().owed(page_size):
                self.largest_page = max(self.largest_page, len(page.entries) + len(page.settled_ids))
                yield page

    backlog = CountingPages()
    owe(backlog, *(owed_cancellation(f"order-{index % 300}", index) for index in range(900)))
    relay = OutboxRelay(backlog, publisher, page_size=page_size)

    assert await relay.relay_once()

    assert backlog.outbox == {}
    assert len(publisher.entries) == 900
    assert backlog.largest_page <= page_size
    assert publisher.calls >= 900 / page_size
    for order in range(300):
        assert [e.event_id for e in publisher.entries if e.partition_key == f"order-{order}"] == [
            f"order-{order}-{order}", f"order-{order}-{order + 300}", f"order-{order}-{order + 600}"
        ]  # fmt: skip


@pytest.mark.anyio
async def test_an_event_refused_on_one_page_holds_back_the_orders_events_on_later_pages(
    outbox: FakeOrderRepository,
) -> None:
    class RefusesFirstOfA(FakeEventPublisher):
        async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
            refused = {entry.event_id: "too large" for entry in entries if entry.event_id == "a-1"}
            await super().publish([entry for entry in entries if entry.event_id not in refused])
            return refused

    refusing = RefusesFirstOfA()
    owe(outbox, owed_cancellation("a", 1), owed_cancellation("a", 2), owed_cancellation("a", 3))
    relay = OutboxRelay(outbox, refusing, page_size=1)

    assert not await relay.relay_once()

    assert refusing.entries == []
    assert set(outbox.outbox) == {"a-1", "a-2", "a-3"}
    assert relay.status.publishing == "failing"
    assert relay.status.last_error == "too large"


async def _eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)  # polling with a deadline


@pytest.mark.anyio
async def test_a_new_orders_first_event_is_published_from_memory_without_a_scan(
    outbox: FakeOrderRepository, publisher: FakeEventPublisher
) -> None:
    class NoScans(FakeOrderRepository):
        scans = 0

        async def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
            self.scans += 1
            async for page in super().owed(page_size):
                yield page

    store = NoScans()
    relay = OutboxRelay(store, publisher, scan_interval=3600)
    task = asyncio.create_task(relay.run())
    try:
        await _eventually(lambda: store.scans == 1)  # the start-up scan
        fresh = [owed_cancellation(f"new-{index}", index).model_copy(update={"opens_order": True})
                 for index in range(5)]  # fmt: skip
        owe(store, *fresh)
        relay.notify(fresh)
        await _eventually(lambda: store.outbox == {})

        assert [entry.event_id for entry in publisher.entries] == [entry.event_id for entry in fresh]
        assert publisher.calls == 1
        assert store.scans == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.anyio
async def test_an_event_that_does_not_open_its_order_waits_for_a_scan_behind_the_orders_earlier_events(
    outbox: FakeOrderRepository, publisher: FakeEventPublisher
) -> None:
    relay = OutboxRelay(outbox, publisher, scan_interval=3600)
    task = asyncio.create_task(relay.run())
    try:
        await _eventually(lambda: relay.status.last_published_at is None and not relay._scan_soon)
        earlier, later = owed_cancellation("a", 1), owed_cancellation("a", 2)
        owe(outbox, earlier, later)
        relay.notify([later])
        await _eventually(lambda: outbox.outbox == {})

        assert [entry.event_id for entry in publisher.entries] == ["a-1", "a-2"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
