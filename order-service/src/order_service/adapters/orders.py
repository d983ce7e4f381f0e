"""Where orders live: the port, and its adapter over the Dapr state API (the sidecar's state store)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import grpc
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

from order_service.domain import Order


@dataclass(frozen=True)
class StoredOrder:
    order: Order
    etag: str


class ConcurrentUpdateError(Exception):
    """Somebody else changed the order since it was read (ETag mismatch): read again and retry."""


class AbstractOrderRepository(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> StoredOrder | None: ...

    @abstractmethod
    async def add(self, order: Order) -> None: ...

    @abstractmethod
    async def update(self, order: Order, etag: str) -> None:
        """Replace the order if it still has `etag`; raise ConcurrentUpdateError otherwise."""


_FIRST_WRITE = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)
_ETAG_MISMATCH_CODES = {grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION}


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
        await self._client.save_state(self._store, order.id, order.model_dump_json(), options=_FIRST_WRITE)

    async def update(self, order: Order, etag: str) -> None:
        try:
            await self._client.save_state(
                self._store, order.id, order.model_dump_json(), etag=etag, options=_FIRST_WRITE
            )
        except DaprGrpcError as error:
            if error.code() in _ETAG_MISMATCH_CODES:  # type: ignore[no-untyped-call]  # unannotated in the SDK
                raise ConcurrentUpdateError(order.id) from error
            raise
