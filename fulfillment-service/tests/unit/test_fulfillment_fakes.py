"""The in-memory store keeps the promises of the real one (ETags, the work index), or the other tests prove little."""

from datetime import timedelta

import pytest
from fulfillment_fakes import T0, FakeFulfillmentStore, order_created
from fulfillment_service.adapters.fulfillments import ConcurrentUpdateError, StoredFulfillment
from fulfillment_service.domain import FulfillmentRecord, FulfillmentStatus

pytestmark = pytest.mark.anyio


def picked_up(order_id: str, *, lease_for: timedelta = timedelta(seconds=150)) -> FulfillmentRecord:
    return FulfillmentRecord.pick_up(order_created(order_id), at=T0, worker="worker-1", lease_for=lease_for)


async def test_a_write_must_carry_the_current_etag_and_a_create_none() -> None:
    store = FakeFulfillmentStore()
    await store.save(picked_up("order-1"), None, now=T0)
    stale = await store.get("order-1")
    assert stale is not None

    with pytest.raises(ConcurrentUpdateError):
        await store.save(picked_up("order-1"), None, now=T0)
    stale.record.cancel()
    await store.save(stale.record, stale, now=T0)
    with pytest.raises(ConcurrentUpdateError):
        await store.save(stale.record, stale, now=T0)
    with pytest.raises(ConcurrentUpdateError):
        await store.save(picked_up("order-2"), StoredFulfillment(picked_up("order-2"), "1", index_page=0), now=T0)

    assert store.record("order-1").status is FulfillmentStatus.CANCELLED
    assert not store.has("order-2")


async def test_a_read_record_is_a_copy_until_it_is_saved() -> None:
    store = FakeFulfillmentStore()
    await store.save(picked_up("order-1"), None, now=T0)
    stored = await store.get("order-1")
    assert stored is not None

    stored.record.cancel()

    assert store.record("order-1").status is FulfillmentStatus.PENDING


async def test_the_index_follows_due_at_and_lists_what_is_due_longest_overdue_first() -> None:
    store = FakeFulfillmentStore()
    await store.save(picked_up("later", lease_for=timedelta(seconds=30)), None, now=T0)
    await store.save(picked_up("sooner", lease_for=timedelta(seconds=10)), None, now=T0)
    await store.save(picked_up("not-yet", lease_for=timedelta(seconds=90)), None, now=T0)
    done = picked_up("done")
    done.record_rejection("undeliverable_address", at=T0)
    done.settle(list(done.owed_events))
    await store.save(done, None, now=T0)

    assert await store.due(T0 + timedelta(seconds=60), limit=10) == ["sooner", "later"]
    assert store.index == {
        "later": T0 + timedelta(seconds=30),
        "sooner": T0 + timedelta(seconds=10),
        "not-yet": T0 + timedelta(seconds=90),
    }
