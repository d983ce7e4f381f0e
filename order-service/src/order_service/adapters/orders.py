"""Where orders live: the port, and its adapter over the Dapr state API (the sidecar's state store)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

from order_service.domain import Order


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    etag: str


class OrderAlreadyExistsError(Exception):
    """An order with this id is stored already."""


class ConcurrentUpdateError(Exception):
    """Somebody else changed the order since it was read (ETag mismatch): read again and retry."""


class AbstractOrderRepository(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> StoredOrder | None: ...

    @abstractmethod
    async def add(self, order: Order) -> None:
        """Store a new order; raise OrderAlreadyExistsError if its id is taken."""

    @abstractmethod
    async def update(self, order: Order, etag: str) -> None:
        """Replace the order if it still has `etag`; raise ConcurrentUpdateError otherwise."""


_FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)


def is_etag_mismatch(error: DaprInternalError) -> bool:
    """The SDK's save_state turns the sidecar's gRPC status into this error, keeping only the message, which for a
    first-write or ETag conflict reads "failed saving state in state store ...: possible etag mismatch"."""
    return "etag mismatch" in str(error).lower()


class DaprOrderRepository(AbstractOrderRepository):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def get(self, order_id: str) -> StoredOrder | None:
        response = await self._client.get_state(self._store, order_id)
        if not response.data:
            return None
        return StoredOrder(order=Order.model_validate_json(response.data), etag=response.etag)

    async def add(self, order: Order) -> None:
        try:
            await self._client.save_state(self._store, order.id, order.model_dump_json(), options=_FIRST_WRITE)
        except DaprInternalError as error:
            if is_etag_mismatch(error):
                raise OrderAlreadyExistsError(order.id) from error
            raise

    async def update(self, order: Order, etag: str) -> None:
        try:
            await self._client.save_state(
                self._store, order.id, order.model_dump_json(), etag=etag, options=_FIRST_WRITE
            )
        except DaprInternalError as error:
            if is_etag_mismatch(error):
                raise ConcurrentUpdateError(order.id) from error
            raise
