"""Test doubles for the order service's ports: in-memory, with ETags, like the real state store."""

import itertools
from collections.abc import AsyncIterator, Callable

from order_contracts.cloudevents import parse_cloud_event, read_event
from order_contracts.events import EventData
from order_service.adapters.events import AbstractEventPublisher
from order_service.adapters.idempotency import AbstractIdempotencyKeys, IdempotencyRecord
from order_service.adapters.orders import (
    AbstractOrderRepository,
    BatchRefusedError,
    ConcurrentUpdateError,
    OrderAlreadyExistsError,
    StoredOrder,
)
from order_service.adapters.outbox import SHARD_COUNT, AbstractOutbox, OutboxEntry, OwedPage
from order_service.adapters.readiness import Readiness
from order_service.domain import Order
from service_runtime.paged_index import ListedPage, shard_of

SIDECAR_TOKEN = "test-app-api-token"
"""The APP_API_TOKEN the test apps are configured with."""
SIDECAR_HEADERS = {"dapr-api-token": SIDECAR_TOKEN}
"""What the sidecar sends with every call to the app: the event endpoints require it."""


class FakeOrderRepository(AbstractOrderRepository, AbstractOutbox):
    """Orders and their outbox in one in-memory store: writes are atomic, as the real transactions are."""

    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, str]] = {}
        self._etags = itertools.count(1)
        self.outbox: dict[str, OutboxEntry] = {}
        self.ever_owed: list[EventData] = []
        """Every event ever recorded as owed, decoded, in commit order."""

    async def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
        """Like the real index: a shard at a time, each in recording order, in pages of at most `page_size`."""
        in_order = sorted(self.outbox.values(), key=lambda entry: entry.recorded_at)
        for shard in sorted({shard_of(entry.partition_key, SHARD_COUNT) for entry in in_order}):
            listed = [entry for entry in in_order if shard_of(entry.partition_key, SHARD_COUNT) == shard]
            for start in range(0, len(listed), page_size):
                page = listed[start : start + page_size]
                yield OwedPage(
                    index_page=ListedPage(shard, 0, {entry.event_id: "" for entry in page}, sealed=False, etag=""),
                    entries=[entry for entry in page if entry.event_id in self.outbox],
                    settled_ids=[],
                )

    async def settle(self, entries: list[OutboxEntry]) -> None:
        for entry in entries:
            self.outbox.pop(entry.event_id, None)

    async def compact(self, page: OwedPage, settled_ids: list[str]) -> None:
        """Nothing to do: settled entries leave no ids behind here."""

    async def get(self, order_id: str) -> StoredOrder | None:
        stored = self._orders.get(order_id)
        if stored is None:
            return None
        payload, etag = stored
        return StoredOrder(Order.model_validate_json(payload), etag)

    async def get_many(self, order_ids: list[str]) -> dict[str, StoredOrder]:
        found = {order_id: await self.get(order_id) for order_id in order_ids}
        return {order_id: stored for order_id, stored in found.items() if stored is not None}

    async def update_many(self, orders: list[StoredOrder]) -> None:
        if any(self._orders[stored.order.id][1] != stored.etag for stored in orders):
            raise BatchRefusedError(f"{len(orders)} orders")
        for stored in orders:
            self._orders[stored.order.id] = (stored.order.model_dump_json(), str(next(self._etags)))

    async def add(self, order: Order, owed: list[OutboxEntry], *, contested: bool) -> None:
        if contested and order.id in self._orders:  # an uncontested id is not checked: the real store writes over
            raise OrderAlreadyExistsError(order.id)
        self._orders[order.id] = (order.model_dump_json(), str(next(self._etags)))
        self._record(owed)

    def _record(self, owed: list[OutboxEntry]) -> None:
        self.outbox.update((entry.event_id, entry) for entry in owed)
        self.ever_owed += [read_event(parse_cloud_event(entry.cloud_event.encode())) for entry in owed]

    async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
        if self._orders[order.id][1] != etag:
            raise ConcurrentUpdateError(order.id)
        self._orders[order.id] = (order.model_dump_json(), str(next(self._etags)))
        self._record(owed)


class FakeEventPublisher(AbstractEventPublisher):
    """Records what reached the "broker", decoded; `failing` makes it refuse, as a broker outage does."""

    def __init__(self) -> None:
        self.published: list[EventData] = []
        self.entries: list[OutboxEntry] = []
        self.failing: Exception | None = None
        self.calls = 0

    async def publish(self, entries: list[OutboxEntry]) -> dict[str, str]:
        assert len({entry.partition_key for entry in entries}) == len(entries), "one event per order per call"
        if self.failing is not None:
            raise self.failing
        self.calls += 1
        self.entries += entries
        self.published += [read_event(parse_cloud_event(entry.cloud_event.encode())) for entry in entries]
        return {}


def relay_at_once(orders: FakeOrderRepository, publisher: FakeEventPublisher) -> Callable[[list[OutboxEntry]], None]:
    """An `on_events_owed` that publishes what is owed immediately, as the relay soon would (for handler tests
    that care what gets published, not when)."""

    def relay(_: list[OutboxEntry]) -> None:
        for entry in sorted(orders.outbox.values(), key=lambda entry: entry.recorded_at):
            publisher.entries.append(entry)
            publisher.published.append(read_event(parse_cloud_event(entry.cloud_event.encode())))
        orders.outbox.clear()

    return relay


class FakeIdempotencyKeys(AbstractIdempotencyKeys):
    def __init__(self) -> None:
        self.records: dict[str, IdempotencyRecord] = {}

    async def claim(self, key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        holder = self.records.setdefault(key, record)
        return None if holder is record else holder


class FakeReadiness:
    """Stands in for DaprStateReadiness: as ready as the test says."""

    def __init__(self, *, ready: bool = True) -> None:
        self.ready = ready

    async def check(self) -> Readiness:
        return Readiness(
            ready=self.ready,
            status="ok" if self.ready else "unavailable",
            state_store="ok" if self.ready else "unavailable",
            event_publishing="ok",
            events_owed=0,
            last_publish_error=None,
        )
