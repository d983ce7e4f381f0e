"""The transactional outbox, over the Dapr state API.

An event the order service owes is written in the same state transaction as the order change that causes it:
an entry `outbox|<event id>` holding the CloudEvent exactly as it will be published, and the event id appended to
one of a fixed number of index documents `outbox-shard|<k>` (the SQLite store has no query API, so the index is
how the relay finds what is owed). The shard is chosen by the order id, so one order's events sit in one shard in
the order they were recorded, and the relay can read the index a few shards at a time without ever meeting an
order's later event before its earlier one. The shard is updated with its ETag, so concurrent writers to one
shard never lose each other's entries; a conflict fails the whole transaction, which is then retried.

Settling an entry deletes it, in one transaction for many, without touching the index: an id whose entry is gone
was settled, and the relay's scan drops such ids from their shards (`compact`). No read grows with the backlog:
the scan reads `SHARDS_PER_READ` shards at a time and at most a page of entries per bulk read (the sidecar's
gRPC answers are capped at 4 MiB).
"""

import logging
import zlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from pydantic import BaseModel, Field
from service_runtime.dapr_state import insert_if_absent

logger = logging.getLogger(__name__)

SHARD_COUNT = 64
SHARDS_PER_READ = 16
COMPACT_ATTEMPTS = 5


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
    """Entries the index lists, in index order, and the ids it lists whose entries are gone (settled already)."""

    shard: int
    entries: list[OutboxEntry]
    settled_ids: list[str]


class ShardIndex(BaseModel):
    event_ids: list[str] = []


def entry_key(event_id: str) -> str:
    return f"outbox|{event_id}"


def shard_key(shard: int) -> str:
    return f"outbox-shard|{shard}"


def shard_of(order_id: str) -> int:
    return zlib.crc32(order_id.encode()) % SHARD_COUNT


class AbstractOutbox(ABC):
    @abstractmethod
    def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
        """Every entry not yet settled, a shard at a time, in pages of at most `page_size` ids; one order's entries
        come in the order they were recorded (never a later one in an earlier page)."""

    @abstractmethod
    async def settle(self, entries: list[OutboxEntry]) -> None:
        """Forget entries whose events the broker has accepted (one transaction)."""

    @abstractmethod
    async def compact(self, shard: int, settled_ids: list[str]) -> None:
        """Drop ids of settled entries from their shard; best effort (a busy shard is left for the next scan)."""


class DaprOutbox(AbstractOutbox):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def create_shards(self) -> None:
        """Each shard document must exist before the first transaction that updates it with an ETag."""
        empty = ShardIndex().model_dump_json()
        for shard in range(SHARD_COUNT):
            await insert_if_absent(self._client, self._store, shard_key(shard), empty)

    async def enlist(self, entries: list[OutboxEntry]) -> list[TransactionalStateOperation]:
        """The operations that record `entries` as owed, in their order, to run in the caller's transaction: each
        entry, and a read-modify-write of each shard they fall in, with the ETag just read (one bulk read). A
        concurrent change to one of those shards fails the transaction; the caller enlists again."""
        if not entries:
            return []
        per_shard: dict[int, list[str]] = {}
        for entry in entries:
            per_shard.setdefault(shard_of(entry.partition_key), []).append(entry.event_id)
        response = await self._client.get_bulk_state(self._store, [shard_key(shard) for shard in per_shard])
        read = {item.key: item for item in response.items}
        operations = [TransactionalStateOperation(entry.key, entry.model_dump_json()) for entry in entries]
        for shard, event_ids in per_shard.items():
            item = read.get(shard_key(shard))
            index = ShardIndex.model_validate_json(item.data) if item is not None and item.data else ShardIndex()
            index.event_ids += event_ids
            etag = item.etag if item is not None and item.etag else None
            operations.append(TransactionalStateOperation(shard_key(shard), index.model_dump_json(), etag=etag))
        return operations

    async def owed(self, page_size: int) -> AsyncIterator[OwedPage]:
        for first in range(0, SHARD_COUNT, SHARDS_PER_READ):
            shards = list(range(first, min(first + SHARDS_PER_READ, SHARD_COUNT)))
            response = await self._client.get_bulk_state(self._store, [shard_key(shard) for shard in shards])
            listed = {item.key: ShardIndex.model_validate_json(item.data).event_ids for item in response.items
                      if item.data}  # fmt: skip
            for shard in shards:
                event_ids = listed.get(shard_key(shard), [])
                for start in range(0, len(event_ids), page_size):
                    yield await self._page(shard, event_ids[start : start + page_size])

    async def _page(self, shard: int, event_ids: list[str]) -> OwedPage:
        response = await self._client.get_bulk_state(self._store, [entry_key(event_id) for event_id in event_ids])
        found = {
            entry.event_id: entry
            for entry in (OutboxEntry.model_validate_json(item.data) for item in response.items if item.data)
        }
        return OwedPage(
            shard=shard,
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

    async def compact(self, shard: int, settled_ids: list[str]) -> None:
        gone = set(settled_ids)
        for _ in range(COMPACT_ATTEMPTS):
            response = await self._client.get_state(self._store, shard_key(shard))
            index = ShardIndex.model_validate_json(response.data) if response.data else ShardIndex()
            remaining = ShardIndex(event_ids=[event_id for event_id in index.event_ids if event_id not in gone])
            try:
                await self._client.execute_state_transaction(
                    self._store,
                    [TransactionalStateOperation(shard_key(shard), remaining.model_dump_json(), etag=response.etag)],
                )
            except Exception as error:  # a create enlisted in the shard meanwhile: read it again
                logger.info(
                    "outbox shard changed while compacting, retrying", extra={"shard": shard, "error": repr(error)}
                )
                continue
            return
