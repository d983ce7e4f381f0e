"""Where fulfillment records live: the port, and its adapter over the Dapr state API.

Besides the record (`fulfillment|<order id>`), a write updates a work index in the same state transaction: the
paged index `work-index` (service_runtime.paged_index) lists each order that needs a worker's attention with the
time it is due (the SQLite store has no query API, so the index is how a worker, of any replica, finds parked
work, expired leases and unpublished events). The shard is fixed by the order id, and the stored record remembers
the index page that lists it, so a later write changes the entry where it is. Index pages are written by their
ETags, so concurrent writers never lose each other's entries; a conflict fails the transaction, which is then
retried. However many orders are parked, no document, read or transaction grows: pages hold at most
`PAGE_CAPACITY` entries.

An order cancelled before fulfillment picked it up (its create was dead-lettered and replayed later, say) has its
cancellation stored under the record's key instead (`remember_cancel`), so the pickup that comes later is refused
like any second pickup, and the order never ships.
"""

import contextlib
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import httpx
from dapr.aio.clients import DaprClient
from order_contracts.events import OrderCancelled
from pydantic import BaseModel
from service_runtime.coalescing import Coalescer
from service_runtime.dapr_state import (
    StateDelete,
    StateWrite,
    TransactionRefusedError,
    as_operations,
    insert_if_absent,
    write_atomically,
)
from service_runtime.paged_index import Listing, PagedIndex, Relisting

from fulfillment_service.domain import FulfillmentRecord

logger = logging.getLogger(__name__)

SHARD_COUNT = 32
PAGE_CAPACITY = 128
"""Most orders in a work-index page: about 9 KB."""
TRANSACTION_ATTEMPTS = 20
READS_PER_BATCH = 100
"""Most records in one coalesced bulk read: a few KB each, far below the sidecar's 4 MiB answers."""
SAVES_PER_TRANSACTION = 16
"""Most saves in one transaction: each record and the index page it is listed in, a few tens of KB in all."""


@dataclass(frozen=True)
class StoredFulfillment:
    record: FulfillmentRecord
    etag: str
    index_page: int | None
    """The work-index page that lists this version; None if the index does not list it (nothing left to do), so a
    save that leaves it so need not touch the index."""


class _StoredDocument(BaseModel):
    """What the state store holds under `record_key`: the record, and where the work index lists it; or, for an
    order cancelled before it was picked up, only that cancellation."""

    record: FulfillmentRecord | None = None
    index_page: int | None = None
    cancelled_before_pickup: OrderCancelled | None = None


class ConcurrentUpdateError(Exception):
    """Somebody else wrote the record since it was read (ETag mismatch), or created it first: read it again."""


class PickupsRefusedError(Exception):
    """A record to be inserted exists already (the batch holds a redelivery): nothing of the batch was written."""


RECORD_KEY_PREFIX = "fulfillment|"


def record_key(order_id: str) -> str:
    return f"{RECORD_KEY_PREFIX}{order_id}"


class AbstractFulfillmentStore(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> StoredFulfillment | None: ...

    @abstractmethod
    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        """Write the record over the version `replacing` (None: only if none exists yet) and index it by
        `record.due_at(now)`, atomically; ConcurrentUpdateError if the stored version is another."""

    @abstractmethod
    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        """Insert the records (of distinct orders) and index each by `record.due_at(now)`, all or none, in one
        transaction; PickupsRefusedError if any of them exists already (or was cancelled before its pickup)."""

    @abstractmethod
    async def remember_cancel(self, cancellation: OrderCancelled) -> None:
        """Store the cancellation of an order that has no record, in the record's place, so a later pickup of it is
        refused; nothing if it is stored already (a redelivery). ConcurrentUpdateError if the order has a record
        (picked up meanwhile: cancel the record)."""

    @abstractmethod
    async def cancelled_before_pickup(self, order_id: str) -> OrderCancelled | None:
        """The cancellation `remember_cancel` stored for the order, if any."""

    @abstractmethod
    async def due(self, now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        """At most `limit` ids of orders due by `now`, the longest overdue first among those read; the index is read
        from `first_shard` on (round the shards), so callers that rotate it reach every shard even while some hold
        more than `limit`."""


class _Save(NamedTuple):
    record: FulfillmentRecord
    replacing: StoredFulfillment | None
    now: datetime

    @property
    def etag(self) -> str | None:
        return self.replacing.etag if self.replacing is not None else None


class DaprFulfillmentStore(AbstractFulfillmentStore):
    """Reads and saves that arrive together go together (service_runtime.coalescing): a busy worker's many reads
    are one bulk read, its many saves one transaction with one bulk read of the index pages they touch. A
    transaction that inserts goes through the sidecar's HTTP API (`write_atomically`: the SDK's transactional
    operations cannot ask for an insert only if absent); the others through the SDK, which costs the app less CPU
    per call."""

    def __init__(
        self,
        client: DaprClient,
        store_name: str,
        *,
        http: httpx.AsyncClient,
        sidecar_url: str,
        index: PagedIndex | None = None,
    ) -> None:
        """`index`: the work index (by default `work-index` in the same store, `SHARD_COUNT` shards of pages of
        `PAGE_CAPACITY`)."""
        self._client = client
        self._store = store_name
        self._http = http
        self._sidecar_url = sidecar_url
        self._index = index or PagedIndex(
            client, store_name, "work-index", shard_count=SHARD_COUNT, capacity=PAGE_CAPACITY
        )
        self._reads = Coalescer(self._read_batch, max_batch=READS_PER_BATCH, name="fulfillment-reads")
        self._saves = Coalescer(
            self._save_batch, max_batch=SAVES_PER_TRANSACTION, name="fulfillment-saves", key=_order_of_save
        )

    async def create_index(self) -> None:
        await self._index.create()

    async def get(self, order_id: str) -> StoredFulfillment | None:
        return await self._reads.submit(order_id)

    async def _read_batch(self, order_ids: list[str]) -> list[StoredFulfillment | Exception | None]:
        stored = await self._read_records(order_ids)
        return [stored.get(order_id) for order_id in order_ids]

    async def _read_records(self, order_ids: list[str]) -> dict[str, StoredFulfillment]:
        return {
            order_id: StoredFulfillment(document.record, etag, document.index_page)
            for order_id, (document, etag) in (await self._read_documents(order_ids)).items()
            if document.record is not None
        }

    async def _read_documents(self, order_ids: list[str]) -> dict[str, tuple[_StoredDocument, str]]:
        """Order id -> what its record key holds, and the ETag, for the keys that hold something."""
        response = await self._client.get_bulk_state(self._store, sorted({record_key(id_) for id_ in order_ids}))
        return {
            item.key.removeprefix(RECORD_KEY_PREFIX): (_StoredDocument.model_validate_json(item.data), item.etag)
            for item in response.items
            if item.data
        }

    async def save(self, record: FulfillmentRecord, replacing: StoredFulfillment | None, *, now: datetime) -> None:
        await self._saves.submit(_Save(record, replacing, now))

    async def _save_batch(self, saves: list[_Save]) -> list[Exception | None]:
        """One transaction for the saves (of distinct orders) and the index pages they touch. Refused: the saves
        whose record changed since it was read get ConcurrentUpdateError; the rest (an index conflict) are tried
        again."""
        answers: list[Exception | None] = [None] * len(saves)
        pending = list(range(len(saves)))
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            batch = [saves[i] for i in pending]
            try:
                await self._transact(batch)
            except Exception as error:  # refused (each path raises its own kind): tell the conflicts apart by reading
                last_error = error
                current = await self._read_documents([save.record.order_id for save in batch])
                stale = {i for i in pending if _etag_of(current.get(saves[i].record.order_id)) != saves[i].etag}
                for i in stale:
                    answers[i] = ConcurrentUpdateError(saves[i].record.order_id)
                pending = [i for i in pending if i not in stale]
                if not pending:
                    return answers
                if not stale:
                    logger.info("work index conflict, retrying", extra={"records": len(pending)})
                continue
            return answers
        assert last_error is not None
        for i in pending:
            answers[i] = last_error
        return answers

    async def _transact(self, saves: list[_Save]) -> None:
        """One transaction: each record (over the version it replaces, or inserted only if absent when it replaces
        none) with the index page that now lists it, and the index changes that go with them."""
        listings, relistings = [], []
        dues = [save.record.due_at(save.now) for save in saves]
        for (record, replacing, _), due in zip(saves, dues, strict=True):
            shard = self._index.shard_of(record.order_id)
            page = replacing.index_page if replacing is not None else None
            if page is not None:
                relistings.append(Relisting(shard, page, record.order_id, None if due is None else due.isoformat()))
            elif due is not None:
                listings.append(Listing(shard, record.order_id, due.isoformat()))
        staged = await self._index.stage(listings, relistings)
        writes: list[StateWrite | StateDelete] = []
        for (record, replacing, _), due in zip(saves, dues, strict=True):
            if replacing is not None and replacing.index_page is not None:
                page = replacing.index_page if due is not None else None
            else:
                page = staged.pages.get(record.order_id)
            document = _StoredDocument(record=record, index_page=page).model_dump_json()
            if replacing is None:
                writes.append(StateWrite(record_key(record.order_id), document, insert_only=True))
            else:
                writes.append(StateWrite(record_key(record.order_id), document, replacing.etag))
        writes += staged.writes
        if any(save.replacing is None for save in saves):
            await write_atomically(self._http, self._sidecar_url, self._store, writes)
        else:
            await self._client.execute_state_transaction(self._store, as_operations(writes))

    async def insert_many(self, records: list[FulfillmentRecord], *, now: datetime) -> None:
        """One bulk read of the index pages the records go in and one transaction; a conflict in the index
        (another writer) is retried, a record that exists already ends it."""
        last_error: Exception | None = None
        for _ in range(TRANSACTION_ATTEMPTS):
            try:
                await self._transact([_Save(record, None, now) for record in records])
            except TransactionRefusedError as error:
                last_error = error
                if await self._read_documents([record.order_id for record in records]):
                    raise PickupsRefusedError(f"{len(records)} records") from error
                logger.info("work index conflict, retrying", extra={"records": len(records)})
                continue
            return
        assert last_error is not None
        raise last_error

    async def remember_cancel(self, cancellation: OrderCancelled) -> None:
        document = _StoredDocument(cancelled_before_pickup=cancellation).model_dump_json()
        if await insert_if_absent(self._client, self._store, record_key(cancellation.order_id), document):
            return
        found = (await self._read_documents([cancellation.order_id])).get(cancellation.order_id)
        if found is None or found[0].record is not None:  # picked up meanwhile, or gone: the caller tries again
            raise ConcurrentUpdateError(cancellation.order_id)

    async def cancelled_before_pickup(self, order_id: str) -> OrderCancelled | None:
        found = (await self._read_documents([order_id])).get(order_id)
        return found[0].cancelled_before_pickup if found is not None else None

    async def due(self, now: datetime, *, limit: int, first_shard: int = 0) -> list[str]:
        due: list[tuple[datetime, str]] = []
        in_order = [(first_shard + offset) % SHARD_COUNT for offset in range(SHARD_COUNT)]
        async with contextlib.aclosing(self._index.scan(in_order)) as pages:
            async for page in pages:
                for order_id, value in page.entries.items():
                    at = datetime.fromisoformat(value)
                    if at <= now:
                        due.append((at, order_id))
                if len(due) >= limit:
                    break
        return [order_id for _, order_id in sorted(due)[:limit]]


def _order_of_save(save: _Save) -> str:
    return save.record.order_id


def _etag_of(stored: tuple[_StoredDocument, str] | None) -> str | None:
    return stored[1] if stored is not None else None
