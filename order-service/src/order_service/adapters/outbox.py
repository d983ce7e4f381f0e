"""The transactional outbox, over the Dapr state API.

An event the order service owes is written in the same state transaction as the order change that causes it:
an entry `outbox|<event id>` holding the CloudEvent exactly as it will be published, and the event id added to
one of a fixed number of index documents `outbox-shard|<k>` (the SQLite store has no query API, so the index is
how the relay finds what is owed). The shard is updated with its ETag, so concurrent writers to one shard never
lose each other's entries; a conflict fails the whole transaction, which is then retried. Spreading writers over
the shards keeps those conflicts rare (see README, "Durable acceptance").
"""

import random
from abc import ABC, abstractmethod
from collections import defaultdict
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from pydantic import BaseModel, Field
from service_runtime.dapr_state import insert_if_absent

SHARD_COUNT = 64


class OutboxEntry(BaseModel):
    """An event owed to the broker: published (again, with the same id) until it is settled."""

    event_id: str
    partition_key: str
    cloud_event: str
    recorded_at: datetime
    shard: int = Field(default=0, description="The index shard that lists it, chosen when it is enlisted.")

    @property
    def key(self) -> str:
        return f"outbox|{self.event_id}"


class ShardIndex(BaseModel):
    event_ids: list[str] = []


def shard_key(shard: int) -> str:
    return f"outbox-shard|{shard}"


class AbstractOutbox(ABC):
    @abstractmethod
    async def owed(self) -> list[OutboxEntry]:
        """Every entry not yet settled, oldest first."""

    @abstractmethod
    async def settle(self, entries: list[OutboxEntry]) -> None:
        """Forget entries whose events the broker has accepted."""


class DaprOutbox(AbstractOutbox):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def create_shards(self) -> None:
        """Each shard document must exist before the first transaction that updates it with an ETag."""
        empty = ShardIndex().model_dump_json()
        for shard in range(SHARD_COUNT):
            await insert_if_absent(self._client, self._store, shard_key(shard), empty)

    async def enlist(self, entry: OutboxEntry) -> list[TransactionalStateOperation]:
        """The operations that record `entry` as owed, to run in the caller's transaction: a read-modify-write of a
        shard chosen at random, with the ETag just read. A concurrent change to that shard fails the transaction;
        the caller enlists again, most likely in another shard."""
        entry.shard = random.randrange(SHARD_COUNT)
        response = await self._client.get_state(self._store, shard_key(entry.shard))
        index = ShardIndex.model_validate_json(response.data) if response.data else ShardIndex()
        index.event_ids.append(entry.event_id)
        return [
            TransactionalStateOperation(entry.key, entry.model_dump_json()),
            TransactionalStateOperation(shard_key(entry.shard), index.model_dump_json(), etag=response.etag or None),
        ]

    async def owed(self) -> list[OutboxEntry]:
        shards = await self._client.get_bulk_state(self._store, [shard_key(shard) for shard in range(SHARD_COUNT)])
        event_ids = [
            event_id
            for item in shards.items
            if item.data
            for event_id in ShardIndex.model_validate_json(item.data).event_ids
        ]
        if not event_ids:
            return []
        entries = await self._client.get_bulk_state(self._store, [f"outbox|{event_id}" for event_id in event_ids])
        owed = [OutboxEntry.model_validate_json(item.data) for item in entries.items if item.data]
        return sorted(owed, key=lambda entry: entry.recorded_at)

    async def settle(self, entries: list[OutboxEntry]) -> None:
        by_shard: dict[int, set[str]] = defaultdict(set)
        for entry in entries:
            by_shard[entry.shard].add(entry.event_id)
        for shard, event_ids in by_shard.items():
            await self._settle_shard(shard, event_ids)

    async def _settle_shard(self, shard: int, event_ids: set[str], attempts: int = 20) -> None:
        last_error: Exception | None = None
        for _ in range(attempts):
            response = await self._client.get_state(self._store, shard_key(shard))
            index = ShardIndex.model_validate_json(response.data) if response.data else ShardIndex()
            remaining = ShardIndex(event_ids=[event_id for event_id in index.event_ids if event_id not in event_ids])
            operations = [
                TransactionalStateOperation(shard_key(shard), remaining.model_dump_json(), etag=response.etag or None),
                *(
                    TransactionalStateOperation(f"outbox|{event_id}", operation_type=TransactionOperationType.delete)
                    for event_id in event_ids
                ),
            ]
            try:
                await self._client.execute_state_transaction(self._store, operations)
            except Exception as error:
                last_error = error
                continue
            return
        assert last_error is not None
        raise last_error
