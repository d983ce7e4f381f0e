"""Where orders live: the port, and its adapter over the Dapr state API (the sidecar's state store). Every write
that owes events records them in the outbox in the same state transaction (adapters/outbox.py).

New orders are group-committed (service_runtime.coalescing): while one transaction of new orders is with the
sidecar, the orders that arrive wait for it and then go together in the next one (at most
`GROUP_COMMIT_MAX_ORDERS`). Alone, an order is written at once; under load, one transaction and one read of the
outbox shards carry many, and the process's own creates never conflict with each other on a shard.
"""

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation
from service_runtime.coalescing import Coalescer
from service_runtime.dapr_state import StateDelete, StateWrite, TransactionRefusedError, as_operations, write_atomically

from order_service.adapters.outbox import DaprOutbox, OutboxEntry
from order_service.domain import Order

logger = logging.getLogger(__name__)

TRANSACTION_ATTEMPTS = 20
GROUP_COMMIT_MAX_ORDERS = 100
"""Most new orders in one transaction: an order and its outbox entry are a few KB, far below the sidecar's 4 MiB."""


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    etag: str


class OrderAlreadyExistsError(Exception):
    """An order with this id is stored already."""


class ConcurrentUpdateError(Exception):
    """Somebody else changed the order since it was read (ETag mismatch): read again and retry."""


class BatchRefusedError(Exception):
    """A transaction over several orders was refused, so none of them was written: one of them changed since it was
    read, or the store failed. The caller tells which by writing them one at a time."""


@dataclass(frozen=True)
class _NewOrder:
    order: Order
    owed: list[OutboxEntry]


class AbstractOrderRepository(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> StoredOrder | None: ...

    @abstractmethod
    async def get_many(self, order_ids: list[str]) -> dict[str, StoredOrder]:
        """The stored ones among these orders, in one read."""

    @abstractmethod
    async def update_many(self, orders: list[StoredOrder]) -> None:
        """Replace each order if it still has its ETag, all or none, in one transaction (no events owed);
        BatchRefusedError if any of them changed since it was read."""

    @abstractmethod
    async def add(self, order: Order, owed: list[OutboxEntry], *, contested: bool) -> None:
        """Store a new order and the events it owes, atomically. `contested`: another request may store this id
        too (an idempotency key's claim names it, so a takeover may race the request that claimed it): the order is
        inserted only if absent, OrderAlreadyExistsError if its id is taken. Otherwise the id was just generated (a
        UUIDv7 nobody else can hold) and is not checked."""

    @abstractmethod
    async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
        """Replace the order if it still has `etag`, and record the events it owes, atomically;
        ConcurrentUpdateError if it changed since it was read."""


class DaprOrderRepository(AbstractOrderRepository):
    def __init__(
        self, client: DaprClient, store_name: str, outbox: DaprOutbox, *, http: httpx.AsyncClient, sidecar_url: str
    ) -> None:
        """`http` and `sidecar_url`: the sidecar's HTTP API, for the transactions that insert (idempotent creates)."""
        self._client = client
        self._store = store_name
        self._outbox = outbox
        self._http = http
        self._sidecar_url = sidecar_url
        self._new_orders = Coalescer(self._write_new, max_batch=GROUP_COMMIT_MAX_ORDERS, name="order-group-commit")

    async def get(self, order_id: str) -> StoredOrder | None:
        response = await self._client.get_state(self._store, order_id)
        if not response.data:
            return None
        return StoredOrder(order=Order.model_validate_json(response.data), etag=response.etag)

    async def get_many(self, order_ids: list[str]) -> dict[str, StoredOrder]:
        response = await self._client.get_bulk_state(self._store, order_ids)
        return {
            item.key: StoredOrder(order=Order.model_validate_json(item.data), etag=item.etag)
            for item in response.items
            if item.data
        }

    async def update_many(self, orders: list[StoredOrder]) -> None:
        operations = [
            TransactionalStateOperation(stored.order.id, stored.order.model_dump_json(), etag=stored.etag)
            for stored in orders
        ]
        try:
            await self._client.execute_state_transaction(self._store, operations)
        except Exception as error:  # the SDK raises bare gRPC errors here; an ETag conflict reads like any other
            raise BatchRefusedError(f"{len(orders)} orders: {error}") from error

    async def add(self, order: Order, owed: list[OutboxEntry], *, contested: bool) -> None:
        if contested:
            # Inserted only if absent, so of the requests of one idempotency key (the first, slow one and the
            # takeovers of its claim) exactly one commits the order, and none writes over a later version of it.
            await self._write([order], owed, insert_only=True)
            return
        # A request cancelled here (its client went away) cancels only its wait: the order may still be committed,
        # and then the relay's scan publishes its event.
        await self._new_orders.submit(_NewOrder(order, owed))

    async def _write_new(self, group: list["_NewOrder"]) -> list[Exception | None]:
        """One transaction for the group: all of them are committed, or none (the error reaches each caller)."""
        await self._write([new.order for new in group], [entry for new in group for entry in new.owed])
        return [None] * len(group)

    async def update(self, order: Order, etag: str, owed: list[OutboxEntry]) -> None:
        await self._write([order], owed, etag=etag)

    async def _write(
        self, orders: list[Order], owed: list[OutboxEntry], *, etag: str | None = None, insert_only: bool = False
    ) -> None:
        """One transaction: the orders (a single one when `etag` is given: an update of that version; or when
        `insert_only`: written only if absent) and each owed event in the outbox. A failed transaction is the
        order's ETag (someone else updated it: the caller re-reads), its id taken (OrderAlreadyExistsError), or an
        outbox index page's ETag (another writer enlisted in the same page: enlist again, retry). Inserts go
        through the sidecar's HTTP API: the SDK's transactional operations cannot carry first-write."""
        assert (etag is None and not insert_only) or len(orders) == 1
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            writes: list[StateWrite | StateDelete] = [
                StateWrite(order.id, order.model_dump_json(), etag=etag, insert_only=insert_only) for order in orders
            ]
            try:  # enlisting too: it fails (IndexBusyError) where rival writers keep moving an index page on
                writes += await self._outbox.enlist(owed)
                if insert_only:
                    await write_atomically(self._http, self._sidecar_url, self._store, writes)
                else:
                    await self._client.execute_state_transaction(self._store, as_operations(writes))
            except Exception as error:
                last_error = error
                if etag is not None:
                    current = await self.get(orders[0].id)
                    if current is None or current.etag != etag:
                        raise ConcurrentUpdateError(orders[0].id) from error
                if insert_only and isinstance(error, TransactionRefusedError) and await self.get(orders[0].id):
                    raise OrderAlreadyExistsError(orders[0].id) from error
                logger.info("outbox index conflict, retrying", extra={"order_id": orders[0].id, "orders": len(orders)})
                continue
            return
        assert last_error is not None
        raise last_error
