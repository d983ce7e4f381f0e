"""Where fulfillment records live: the port, and its adapter over the Dapr state API.

Besides the record (`fulfillment|<order id>`), every write updates a work index in the same state transaction:
`work-shard|<k>` maps each order that needs a worker's attention to the time it is due (the SQLite store has no
query API, so the index is how a worker, of any replica, finds parked work, expired leases and unpublished
events). The shard is fixed by the order id and updated with its ETag, so concurrent writers never lose each
other's entries; a conflict fails the transaction, which is then retried.
"""

import logging
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

import httpx
from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._request import TransactionalStateOperation
from pydantic import BaseModel
from service_runtime.dapr_state import (
    StateWrite,
    TransactionRefusedError,
    insert_if_absent,
    is_etag_mismatch,
    write_atomically,
)

from fulfillment_service.domain import FulfillmentRecord

logger = logging.getLogger(__name__)

SHARD_COUNT = 32
SHARDS_PER_READ = 8
"""The work index is read this many shards per bulk read: the sidecar's gRPC answers are capped at 4 MiB, and a long
carrier outage parks every order in the index."""
TRANSACTION_ATTEMPTS = 20


@dataclass(frozen=True)
class StoredFulfillment:
    record: FulfillmentRecord
    etag: str
    indexed: bool
    """Whether the work index may list this version: a record with nothing left to do is never indexed, so a save
    that leaves it so need not touch the index."""


class ConcurrentUpdateError(Exception):
    """Somebody else wrote the record since it was read (ETag mismatch), or created it first: read it again."""


class PickupsRefusedError(Exception):
    """A record to be inserted exists already (the batch holds a redelivery): nothing of the batch was written."""


class WorkIndexShard(BaseModel):
    due: dict[str, datetime] = {}
    """Order id -> when it is due."""


def record_key(order_id: str) -> str:
    return f"fulfillment|{order_id}"


def shard_key(shard: int) -> str:
    return f"work-shard|{shard}"


def shard_of(order_id: str) -> int:
    return zlib.crc32(order_id.encode()) % SHARD_COUNT


class AbstractFulfillmentStore(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> StoredFulfillment | None: ...

    @abstractmethod
    async def save(self, record: FulfillmentRecord, etag: str | None, *, now: datetime, indexed: bool = True) -> None:
        """Write the record if it still has `etag` (None: if it does not exist yet) and index it by
        `record.due_at(now)`, atomically; ConcurrentUpdateError otherwise. `indexed`: whether the version being
        replaced may be in the index (`StoredFulfillment.indexed`); when neither is, the index is left alone."""

    @abstractmethod
    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        """Insert the records (of distinct orders) and index each by `record.due_at(now)`, all or none, in one
        transaction; PickupsRefusedError if any of them exists already."""

    @abstractmethod
    async def due(self, now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        """At most `limit` ids of orders due by `now`, the longest overdue first among those read; the index is read
        from `first_shard` on (round the shards), so callers that rotate it reach every shard even while some hold
        more than `limit`."""


class DaprFulfillmentStore(AbstractFulfillmentStore):
    """Through the SDK, except the transaction that inserts a new record: the SDK's transactional operations cannot
    ask for an insert only if absent, so that one goes through the sidecar's HTTP API (`write_atomically`). Only
    that one: with every write over HTTP the app spent about 18 ms of CPU per order instead of 13
    (bench/cpu_per_order.py); with this one, 15."""

    def __init__(self, client: DaprClient, store_name: str, *, http: httpx.AsyncClient, sidecar_url: str) -> None:
        self._client = client
        self._store = store_name
        self._http = http
        self._sidecar_url = sidecar_url

    async def create_shards(self) -> None:
        """Each shard must exist before the first transaction that updates it with an ETag (an update without one
        could overwrite a concurrent writer's entry)."""
        empty = WorkIndexShard().model_dump_json()
        for shard in range(SHARD_COUNT):
            await insert_if_absent(self._client, self._store, shard_key(shard), empty)

    async def get(self, order_id: str) -> StoredFulfillment | None:
        response = await self._client.get_state(self._store, record_key(order_id))
        if not response.data:
            return None
        record = FulfillmentRecord.model_validate_json(response.data)
        return StoredFulfillment(record=record, etag=response.etag, indexed=record.may_be_indexed())

    async def save(self, record: FulfillmentRecord, etag: str | None, *, now: datetime, indexed: bool = True) -> None:
        due = record.due_at(now)
        if etag is not None and not indexed and due is None:
            await self._save_unindexed(record, etag)
            return
        shard = shard_of(record.order_id)
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            response = await self._client.get_state(self._store, shard_key(shard))
            index = WorkIndexShard.model_validate_json(response.data) if response.data else WorkIndexShard()
            if due is None:
                index.due.pop(record.order_id, None)
            else:
                index.due[record.order_id] = due
            try:
                await self._commit(record, etag, index, shard, response.etag or None)
            except Exception as error:  # refused (each path raises its own kind): tell the conflicts apart by reading
                last_error = error
                current = await self.get(record.order_id)
                if (current.etag if current else None) != etag:
                    raise ConcurrentUpdateError(record.order_id) from error
                logger.info("work index shard conflict, retrying", extra={"order_id": record.order_id})
                continue
            return
        assert last_error is not None
        raise last_error

    async def _save_unindexed(self, record: FulfillmentRecord, etag: str) -> None:
        try:
            await self._client.save_state(self._store, record_key(record.order_id), record.model_dump_json(), etag=etag)
        except DaprInternalError as error:
            if is_etag_mismatch(error):
                raise ConcurrentUpdateError(record.order_id) from error
            raise

    async def _commit(
        self, record: FulfillmentRecord, etag: str | None, index: WorkIndexShard, shard: int, shard_etag: str | None
    ) -> None:
        """One transaction: the record (by its ETag, or inserted only if absent when `etag` is None) and its shard."""
        record_json, index_json = record.model_dump_json(), index.model_dump_json()
        if etag is None:
            await write_atomically(
                self._http,
                self._sidecar_url,
                self._store,
                [
                    StateWrite(record_key(record.order_id), record_json, insert_only=True),
                    StateWrite(shard_key(shard), index_json, shard_etag),
                ],
            )
            return
        await self._client.execute_state_transaction(
            self._store,
            [
                TransactionalStateOperation(record_key(record.order_id), record_json, etag),
                TransactionalStateOperation(shard_key(shard), index_json, shard_etag),
            ],
        )

    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        """One bulk read of the shards the records fall in and one transaction (over HTTP, for insert-only); a
        conflict on a shard (another writer) is retried, a record that exists already ends it."""
        keys = sorted({shard_key(shard_of(record.order_id)) for record in records})
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            response = await self._client.get_bulk_state(self._store, keys)
            shards = {
                item.key: (WorkIndexShard.model_validate_json(item.data) if item.data else WorkIndexShard(), item.etag)
                for item in response.items
            }
            for record in records:
                due = record.due_at(now)
                if due is not None:
                    shards[shard_key(shard_of(record.order_id))][0].due[record.order_id] = due
            writes = [StateWrite(record_key(record.order_id), record.model_dump_json(), insert_only=True)
                      for record in records]  # fmt: skip
            writes += [StateWrite(key, index.model_dump_json(), etag or None) for key, (index, etag) in shards.items()]
            try:
                await write_atomically(self._http, self._sidecar_url, self._store, writes)
            except TransactionRefusedError as error:
                last_error = error
                existing = await self._client.get_bulk_state(
                    self._store, [record_key(record.order_id) for record in records]
                )
                if any(item.data for item in existing.items):
                    raise PickupsRefusedError(f"{len(records)} records") from error
                logger.info("work index shard conflict, retrying", extra={"records": len(records)})
                continue
            return
        assert last_error is not None
        raise last_error

    async def due(self, now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        due: list[tuple[datetime, str]] = []
        in_order = [(first_shard + offset) % SHARD_COUNT for offset in range(SHARD_COUNT)]
        for start in range(0, SHARD_COUNT, SHARDS_PER_READ):
            keys = [shard_key(shard) for shard in in_order[start : start + SHARDS_PER_READ]]
            shards = await self._client.get_bulk_state(self._store, keys)
            due += [
                (at, order_id)
                for item in shards.items
                if item.data
                for order_id, at in WorkIndexShard.model_validate_json(item.data).due.items()
                if at <= now
            ]
            if len(due) >= limit:
                break
        return [order_id for _, order_id in sorted(due)[:limit]]
