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
from dapr.clients.grpc._request import TransactionalStateOperation
from pydantic import BaseModel
from service_runtime.coalescing import Coalescer
from service_runtime.dapr_state import StateWrite, TransactionRefusedError, insert_if_absent, write_atomically

from fulfillment_service.domain import FulfillmentRecord

logger = logging.getLogger(__name__)

SHARD_COUNT = 32
SHARDS_PER_READ = 8
"""The work index is read this many shards per bulk read: the sidecar's gRPC answers are capped at 4 MiB, and a long
carrier outage parks every order in the index."""
TRANSACTION_ATTEMPTS = 20
READS_PER_BATCH = 100
"""Most records in one coalesced bulk read: a few KB each, far below the sidecar's 4 MiB answers."""
SAVES_PER_TRANSACTION = 16
"""Most saves in one transaction. Each may touch its own shard, and a shard lists every parked order of its
share, so this bounds the transaction's size during a long carrier outage too."""


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


@dataclass(frozen=True)
class _Save:
    record: FulfillmentRecord
    etag: str | None
    now: datetime
    indexed: bool

    @property
    def touches_index(self) -> bool:
        """A save that leaves the record unindexed, of a version that was not indexed either, leaves the index be."""
        return self.etag is None or self.indexed or self.record.due_at(self.now) is not None


class DaprFulfillmentStore(AbstractFulfillmentStore):
    """Reads and saves that arrive together go together (service_runtime.coalescing): a busy worker's many reads
    are one bulk read, its many saves one transaction with one bulk read of the shards they touch. A transaction
    that inserts goes through the sidecar's HTTP API (`write_atomically`: the SDK's transactional operations cannot
    ask for an insert only if absent); the others through the SDK, which costs the app less CPU per call."""

    def __init__(self, client: DaprClient, store_name: str, *, http: httpx.AsyncClient, sidecar_url: str) -> None:
        self._client = client
        self._store = store_name
        self._http = http
        self._sidecar_url = sidecar_url
        self._reads = Coalescer(self._read_batch, max_batch=READS_PER_BATCH, name="fulfillment-reads")
        self._saves = Coalescer(
            self._save_batch, max_batch=SAVES_PER_TRANSACTION, name="fulfillment-saves", key=_order_of_save
        )

    async def create_shards(self) -> None:
        """Each shard must exist before the first transaction that updates it with an ETag (an update without one
        could overwrite a concurrent writer's entry)."""
        empty = WorkIndexShard().model_dump_json()
        for shard in range(SHARD_COUNT):
            await insert_if_absent(self._client, self._store, shard_key(shard), empty)

    async def get(self, order_id: str) -> StoredFulfillment | None:
        return await self._reads.submit(order_id)

    async def _read_batch(self, order_ids: list[str]) -> list[StoredFulfillment | Exception | None]:
        stored = await self._read_records(order_ids)
        return [stored.get(order_id) for order_id in order_ids]

    async def _read_records(self, order_ids: list[str]) -> dict[str, StoredFulfillment]:
        response = await self._client.get_bulk_state(self._store, sorted({record_key(id_) for id_ in order_ids}))
        found = {}
        for item in response.items:
            if item.data:
                record = FulfillmentRecord.model_validate_json(item.data)
                found[record.order_id] = StoredFulfillment(record, item.etag, record.may_be_indexed())
        return found

    async def save(self, record: FulfillmentRecord, etag: str | None, *, now: datetime, indexed: bool = True) -> None:
        await self._saves.submit(_Save(record, etag, now, indexed))

    async def _save_batch(self, saves: list[_Save]) -> list[Exception | None]:
        """One transaction for the saves (of distinct orders) and the shards they touch. Refused: the saves whose
        record changed since it was read get ConcurrentUpdateError; the rest (a shard conflict) are tried again."""
        answers: list[Exception | None] = [None] * len(saves)
        pending = list(range(len(saves)))
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            batch = [saves[i] for i in pending]
            shards = await self._read_shards([save.record.order_id for save in batch if save.touches_index])
            for save in batch:
                if save.touches_index:
                    _index(shards[shard_key(shard_of(save.record.order_id))][0], save.record, save.now)
            try:
                await self._transact([(save.record, save.etag) for save in batch], shards)
            except Exception as error:  # refused (each path raises its own kind): tell the conflicts apart by reading
                last_error = error
                current = await self._read_records([save.record.order_id for save in batch])
                stale = {i for i in pending if _etag_of(current.get(saves[i].record.order_id)) != saves[i].etag}
                for i in stale:
                    answers[i] = ConcurrentUpdateError(saves[i].record.order_id)
                pending = [i for i in pending if i not in stale]
                if not pending:
                    return answers
                if not stale:
                    logger.info("work index shard conflict, retrying", extra={"records": len(pending)})
                continue
            return answers
        assert last_error is not None
        for i in pending:
            answers[i] = last_error
        return answers

    async def _read_shards(self, order_ids: list[str]) -> dict[str, tuple[WorkIndexShard, str | None]]:
        """The shards these orders fall in, each with its ETag, in one bulk read."""
        keys = sorted({shard_key(shard_of(order_id)) for order_id in order_ids})
        if not keys:
            return {}
        response = await self._client.get_bulk_state(self._store, keys)
        return {item.key: (WorkIndexShard.model_validate_json(item.data or "{}"), item.etag or None)
                for item in response.items}  # fmt: skip

    async def _transact(
        self, records: list[tuple[FulfillmentRecord, str | None]], shards: dict[str, tuple[WorkIndexShard, str | None]]
    ) -> None:
        """One transaction: each record (by its ETag, or inserted only if absent when its ETag is None) and each
        shard (by its ETag)."""
        if any(etag is None for _, etag in records):
            writes = [StateWrite(record_key(record.order_id), record.model_dump_json(), etag, insert_only=etag is None)
                      for record, etag in records]  # fmt: skip
            writes += [StateWrite(key, index.model_dump_json(), etag) for key, (index, etag) in shards.items()]
            await write_atomically(self._http, self._sidecar_url, self._store, writes)
            return
        operations = [TransactionalStateOperation(record_key(record.order_id), record.model_dump_json(), etag)
                      for record, etag in records]  # fmt: skip
        operations += [TransactionalStateOperation(key, index.model_dump_json(), etag)
                       for key, (index, etag) in shards.items()]  # fmt: skip
        await self._client.execute_state_transaction(self._store, operations)

    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        """One bulk read of the shards the records fall in and one transaction; a conflict on a shard (another
        writer) is retried, a record that exists already ends it."""
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            shards = await self._read_shards([record.order_id for record in records])
            for record in records:
                _index(shards[shard_key(shard_of(record.order_id))][0], record, now)
            try:
                await self._transact([(record, None) for record in records], shards)
            except TransactionRefusedError as error:
                last_error = error
                if await self._read_records([record.order_id for record in records]):
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


def _index(shard: WorkIndexShard, record: FulfillmentRecord, now: datetime) -> None:
    due = record.due_at(now)
    if due is None:
        shard.due.pop(record.order_id, None)
    else:
        shard.due[record.order_id] = due


def _order_of_save(save: _Save) -> str:
    return save.record.order_id


def _etag_of(stored: StoredFulfillment | None) -> str | None:
    return stored.etag if stored is not None else None
