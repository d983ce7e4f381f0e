"""The transactional outbox, over the Dapr state API.

An event the order service owes is written in the same state transaction as the order change that causes it:
an entry `outbox|<event id>` holding the CloudEvent exactly as it will be published, and the event id listed in
a paged index, `outbox-index` (service_runtime.paged_index; the SQLite store has no query API, so the index is how
the relay finds what is owed). The shard is chosen by the order id, so one order's events are listed in one shard
in the order they were recorded, and the relay, reading a page at a time, never meets an order's later event
before its earlier one. Index pages are written by their ETags, so concurrent writers never lose each other's
entries; a conflict fails the whole transaction, which is then retried.

Settling an entry deletes it, in one transaction for many, without touching the index: an id whose entry is gone
was settled, and the relay's scan unlists such ids (`compact`). Nothing grows with the backlog: index pages hold
at most `PAGE_CAPACITY` ids, and each bulk read of entries at most a page of them (the sidecar's gRPC answers are
capped at 4 MiB).
"""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from pydantic import BaseModel, Field
from service_runtime.dapr_state import StateDelete, StateWrite
from service_runtime.paged_index import ListedPage, Listing, PagedIndex

SHARD_COUNT = 64
PAGE_CAPACITY = 128
"""Most ids in an index page: about 6 KB."""


class OutboxEntry(BaseModel):
    """An event owed to the broker: published (again, with the same id) until it is settled."""

    event_id: str
    partition_key: str
    cloud_event: str
    recorded_at: datetime
    opens_order: bool = Field(
        default=False,
        description="The first event of its order (order.created.v1): nothing of the order can be owed before it, "
        "so the process that recorded it may publish it at once, without reading the index.",
    )

    @property
    def key(self) -> str:
        return entry_key(self.event_id)


@dataclass(frozen=True)
class OwedPage:
    """Entries an index page lists, in index order, and the ids it lists whose entries are gone (settled already)."""

    index_page: ListedPage
    entries: list[OutboxEntry]
    settled_ids: list[str]


def entry_key(event_id: str) -> str:
    return f"outbox|{event_id}"


class AbstractOutbox(ABC):
    @abstractmethod
    def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
        """Every entry not yet settled, a shard at a time, in pages of at most `page_size` ids; one order's entries
        come in the order they were recorded (never a later one in an earlier page)."""

    @abstractmethod
    async def settle(self, entries: list[OutboxEntry]) -> None:
        """Forget entries whose events the broker has accepted (one transaction)."""

    @abstractmethod
    async def compact(self, page: OwedPage, settled_ids: list[str]) -> None:
        """Unlist settled entries from the index page that listed them; best effort (a page that keeps changing is
        left for the next scan)."""


class DaprOutbox(AbstractOutbox):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name
        self._index = PagedIndex(client, store_name, "outbox-index", shard_count=SHARD_COUNT, capacity=PAGE_CAPACITY)

    async def create_index(self) -> None:
        await self._index.create()

    async def enlist(self, entries: list[OutboxEntry]) -> list[StateWrite | StateDelete]:
        """The operations that record `entries` as owed, in their order, to run in the caller's transaction: each
        entry, and the index pages they are listed in, by the ETags just read (one bulk read, as a rule). A
        concurrent change to one of those pages fails the transaction; the caller enlists again."""
        if not entries:
            return []
        staged = await self._index.stage(
            [Listing(self._index.shard_of(entry.partition_key), entry.event_id, "") for entry in entries]
        )
        return [StateWrite(entry.key, entry.model_dump_json()) for entry in entries] + staged.writes

    async def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
        async for index_page in self._index.scan(range(SHARD_COUNT)):
            event_ids = list(index_page.entries)
            for start in range(0, len(event_ids), page_size):
                yield await self._page(index_page, event_ids[start : start + page_size])

    async def _page(self, index_page: ListedPage, event_ids: list[str]) -> OwedPage:
        response = await self._client.get_bulk_state(self._store, [entry_key(event_id) for event_id in event_ids])
        found = {
            entry.event_id: entry
            for entry in (OutboxEntry.model_validate_json(item.data) for item in response.items if item.data)
        }
        return OwedPage(
            index_page=index_page,
            entries=[found[event_id] for event_id in event_ids if event_id in found],
            settled_ids=[event_id for event_id in event_ids if event_id not in found],
        )

    async def settle(self, entries: list[OutboxEntry]) -> None:
        await self._client.execute_state_transaction(
            self._store,
            [
                TransactionalStateOperation(entry.key, operation_type=TransactionOperationType.delete)
                for entry in entries
            ],
        )

    async def compact(self, page: OwedPage, settled_ids: list[str]) -> None:
        await self._index.unlist(page.index_page, settled_ids)
