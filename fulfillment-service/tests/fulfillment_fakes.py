"""Test doubles for the fulfillment service's ports (in memory, with ETags and the work index, like the real state
store), a clock the tests move by hand, test data, and `eventually` for waiting on the shipping worker."""

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from fulfillment_service.adapters.carrier import (
    AbstractCarrier,
    CarrierRejectedError,
    CarrierUnavailableError,
    FoundShipment,
)
from fulfillment_service.adapters.events import AbstractEventPublisher
from fulfillment_service.adapters.fulfillments import (
    SHARD_COUNT,
    AbstractFulfillmentStore,
    ConcurrentUpdateError,
    PickupsRefusedError,
    StoredFulfillment,
)
from fulfillment_service.domain import FulfillmentRecord, FulfillmentStatus, Shipment
from order_contracts.events import Address, Customer, EventData, LineItem, OrderCancelled, OrderCreated
from service_runtime.paged_index import shard_of

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

SIDECAR_TOKEN = "test-app-api-token"
"""The APP_API_TOKEN the test apps are configured with."""
SIDECAR_HEADERS = {"dapr-api-token": SIDECAR_TOKEN}
"""What the sidecar sends with every call to the app: the event endpoints require it."""
WEBHOOK_SECRET = "test-carrier-webhook-secret"
"""The CARRIER_WEBHOOK_SECRET the test apps are configured with."""


def order_created(order_id: str = "order-1") -> OrderCreated:
    return OrderCreated(
        order_id=order_id,
        customer=Customer(
            id="cust-42",
            name="Jane Doe",
            email="jane@example.com",
            shipping_address=Address(line1="1 Example Street", city="London", postal_code="SW1A 1AA", country="GB"),
        ),
        items=[LineItem(sku="BOOK-123", quantity=2, unit_price="12.50")],
        currency="GBP",
        total="25.00",
        created_at=T0 - timedelta(minutes=1),
    )


def order_cancelled(order_id: str = "order-1") -> OrderCancelled:
    return OrderCancelled(order_id=order_id, reason="changed my mind", cancelled_at=T0)


class FakeClock:
    """Stands in for `utc_now`: time moves only when the test says so."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class FakeFulfillmentStore(AbstractFulfillmentStore):
    """Records and their work index in memory. Like DaprFulfillmentStore: a write must carry the record's current
    ETag (None: the record must not exist yet), and indexes the record by `record.due_at(now)`, atomically."""

    def __init__(self) -> None:
        self._records: dict[str, tuple[str, str]] = {}
        """Order id -> (the record as JSON, its ETag)."""
        self._etags = itertools.count(1)
        self.index: dict[str, datetime] = {}
        """The work index: order id -> when it is due."""
        self.reads: list[str] = []
        """The order id of every `get`, in order."""
        self.writes: dict[str, list[FulfillmentRecord]] = {}
        """Per order, every record written, in order."""
        self.cancelled_before_pickups: dict[str, OrderCancelled] = {}
        """Order id -> its cancellation stored in its record's place (the key is taken: no record may be inserted)."""

    async def get(self, order_id: str) -> StoredFulfillment | None:
        self.reads.append(order_id)
        stored = self._records.get(order_id)
        if stored is None:
            return None
        payload, etag = stored
        record = FulfillmentRecord.model_validate_json(payload)
        return StoredFulfillment(record=record, etag=etag, index_page=0 if order_id in self.index else None)

    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        current = self._records.get(record.order_id)
        if (current[1] if current else None) != (replacing.etag if replacing else None):
            raise ConcurrentUpdateError(record.order_id)
        if record.order_id in self.cancelled_before_pickups:
            raise ConcurrentUpdateError(record.order_id)
        self._records[record.order_id] = (record.model_dump_json(), str(next(self._etags)))
        self.writes.setdefault(record.order_id, []).append(record.model_copy(deep=True))
        due = record.due_at(now)
        if due is None:
            self.index.pop(record.order_id, None)
        else:
            self.index[record.order_id] = due

    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        if any(record.order_id in self._records or record.order_id in self.cancelled_before_pickups
               for record in records):  # fmt: skip
            raise PickupsRefusedError(f"{len(records)} records")
        for record in records:
            await self.save(record, None, now=now)

    async def remember_cancel(self, cancellation: OrderCancelled) -> None:
        if cancellation.order_id in self._records:
            raise ConcurrentUpdateError(cancellation.order_id)
        self.cancelled_before_pickups.setdefault(cancellation.order_id, cancellation)

    async def cancelled_before_pickup(self, order_id: str) -> OrderCancelled | None:
        return self.cancelled_before_pickups.get(order_id)

    async def due(self, now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        """Like the real index, read shard by shard from `first_shard` until `limit` are found."""
        due: list[tuple[datetime, str]] = []
        for offset in range(SHARD_COUNT):
            shard = (first_shard + offset) % SHARD_COUNT
            due += [(at, order_id) for order_id, at in self.index.items()
                    if shard_of(order_id, SHARD_COUNT) == shard and at <= now]  # fmt: skip
            if len(due) >= limit:
                break
        return [order_id for _, order_id in sorted(due)[:limit]]

    def record(self, order_id: str) -> FulfillmentRecord:
        """The stored record (a copy); fails the test if there is none."""
        stored = self._records.get(order_id)
        assert stored is not None, f"no record for {order_id}"
        return FulfillmentRecord.model_validate_json(stored[0])

    def statuses(self, order_id: str) -> list[FulfillmentStatus]:
        """The status of every record written for the order, in order."""
        return [record.status for record in self.writes.get(order_id, [])]

    def has(self, order_id: str) -> bool:
        return order_id in self._records


class AnswerLostStore(FakeFulfillmentStore):
    """The first insert commits, and then its answer is lost (the sidecar committed after the client's timeout). As
    DaprFulfillmentStore reports that: `insert_many` raises the timeout (it tells only a refused transaction apart
    from other errors), `save` raises ConcurrentUpdateError (after a failed write it reads the record, and finds one
    there now: a rival insert, for all it can tell)."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_next_answer = True

    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        losing = replacing is None and self._losing()
        await super().save(record, replacing, now=now)
        if losing:
            raise ConcurrentUpdateError(record.order_id)

    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        losing = self._losing()
        await super().insert_many(records, now=now)
        if losing:
            raise httpx.ReadTimeout("no answer from the sidecar in time")

    def _losing(self) -> bool:
        losing, self.lose_next_answer = self.lose_next_answer, False
        return losing


class FakeCarrier(AbstractCarrier):
    """One shipment per order id, as the real carrier's idempotency key guarantees. Can be told to reject, to be
    unavailable, or to hold every call until released; records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        """The order id of every create_shipment call, in order (counted when the call arrives)."""
        self.voids: list[str] = []
        """The shipment id of every void_shipment call, in order."""
        self.finds: list[str] = []
        """The order id of every find_shipment call, in order."""
        self.shipments: dict[str, Shipment] = {}
        """Order id -> the shipment created for it."""
        self.voided: set[str] = set()
        self.failure: Exception | None = None
        """Raised by every create_shipment call while set."""
        self.void_refusal: str | None = None
        """While set, every void is refused with this reason (as the real carrier refuses a delivered shipment)."""
        self._released: asyncio.Event | None = None

    def reject(self, reason: str) -> None:
        self.failure = CarrierRejectedError(reason)

    def be_unavailable(self, error: str = "HTTP 503: carrier down") -> None:
        self.failure = CarrierUnavailableError(error)

    def recover(self) -> None:
        self.failure = None

    def hold(self) -> None:
        """Calls from now on wait (after being counted) until `release`."""
        self._released = asyncio.Event()

    def release(self) -> None:
        if self._released is not None:
            self._released.set()
        self._released = None

    async def create_shipment(self, order: OrderCreated) -> Shipment:
        self.calls.append(order.order_id)
        await self._wait_if_held()
        if self.failure is not None:
            raise self.failure
        return self.shipments.setdefault(
            order.order_id,
            Shipment(shipment_id=f"shp-{order.order_id}", carrier="Fake Parcel", tracking_number=f"T-{order.order_id}"),
        )

    async def find_shipment(self, order_id: str) -> FoundShipment | None:
        self.finds.append(order_id)
        await self._wait_if_held()
        if self.failure is not None and not isinstance(self.failure, CarrierRejectedError):
            raise self.failure
        shipment = self.shipments.get(order_id)
        return None if shipment is None else FoundShipment(shipment, voided=shipment.shipment_id in self.voided)

    async def void_shipment(self, shipment_id: str) -> None:
        self.voids.append(shipment_id)
        await self._wait_if_held()
        if shipment_id not in {shipment.shipment_id for shipment in self.shipments.values()}:
            raise CarrierRejectedError(f"no shipment {shipment_id}")
        if self.void_refusal is not None and shipment_id not in self.voided:
            raise CarrierRejectedError(self.void_refusal)
        self.voided.add(shipment_id)  # voiding a voided shipment changes nothing, as at the real carrier

    async def _wait_if_held(self) -> None:
        if self._released is not None:
            await self._released.wait()


class FakeEventPublisher(AbstractEventPublisher):
    """Records what reached the "broker"; `failing` makes it refuse, as a broker outage does."""

    def __init__(self) -> None:
        self.published: list[EventData] = []
        self.refused: list[EventData] = []
        self.failing: Exception | None = None

    async def publish(self, event: EventData) -> None:
        if self.failing is not None:
            self.refused.append(event)
            raise self.failing
        self.published.append(event)

    async def publish_many(self, events: list[EventData]) -> set[str]:
        assert len({event.order_id for event in events}) == len(events), "one event per order per call"
        if self.failing is not None:
            self.refused += events
            return {event.order_id for event in events}
        self.published += events
        return set()

    def of_type(self, event_type: str) -> list[EventData]:
        return [event for event in self.published if event.event_type == event_type]


class RecordingWaker:
    """Stands in for `ShippingWorker.wake` where no worker runs: records which orders it was woken for."""

    def __init__(self) -> None:
        self.order_ids: list[str] = []

    def __call__(self, order_id: str) -> None:
        self.order_ids.append(order_id)


async def eventually(condition: Callable[[], bool], *, within: float = 5.0, what: str = "") -> None:
    """Let the event loop run until `condition` holds; fail after `within` seconds (a deadline, not a wait)."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 (the fakes' state changes signal nothing to wait on)
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"not within {within} s: {what or condition}") from None
