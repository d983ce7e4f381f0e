"""Test doubles for the order service's ports: in-memory, with ETags, like the real state store."""

import itertools

from order_contracts.events import EventData
from order_service.adapters.events import AbstractEventPublisher
from order_service.adapters.idempotency import AbstractIdempotencyKeys, IdempotencyRecord
from order_service.adapters.orders import (
    AbstractOrderRepository,
    ConcurrentUpdateError,
    OrderAlreadyExistsError,
    StoredOrder,
)
from order_service.domain import Order


class FakeOrderRepository(AbstractOrderRepository):
    def __init__(self) -> None:
        self._orders: dict[str, tuple[str, str]] = {}
        self._etags = itertools.count(1)

    async def get(self, order_id: str) -> StoredOrder | None:
        stored = self._orders.get(order_id)
        if stored is None:
            return None
        payload, etag = stored
        return StoredOrder(Order.model_validate_json(payload), etag)

    async def add(self, order: Order) -> None:
        if order.id in self._orders:
            raise OrderAlreadyExistsError(order.id)
        self._orders[order.id] = (order.model_dump_json(), str(next(self._etags)))

    async def update(self, order: Order, etag: str) -> None:
        if self._orders[order.id][1] != etag:
            raise ConcurrentUpdateError(order.id)
        self._orders[order.id] = (order.model_dump_json(), str(next(self._etags)))


class FakeEventPublisher(AbstractEventPublisher):
    def __init__(self) -> None:
        self.published: list[EventData] = []

    async def publish(self, event: EventData) -> None:
        self.published.append(event)


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

    async def check(self) -> bool:
        return self.ready
