"""A sharded index over the Dapr state API whose documents stay small however much it lists.

Both services keep an index of work the SQLite store cannot query for: the order service of the events it owes
(its outbox), fulfillment of the orders due for a worker's look. An entry (an id and a short text value) is listed
and unlisted in the same state transaction as the change that causes it. An index has a fixed number of shards;
a shard is a header `<name>|<shard>` holding the range of its pages, and pages `<name>|<shard>|<n>` of at most
`capacity` entries. No document, read or transaction grows with how much the index lists:

- A new entry goes into its shard's open page, the last one. The transaction that would overfill it seals it and
  opens the next, moving the header on; only a sealed page is ever deleted, so the open page never vanishes under
  a writer. A shard lists its entries in the order they were added: a scan reads the pages in order, and an entry
  added after another was committed sits after it in the same page or in a later page.
- An entry is changed or removed in the page it went into (`stage` says which; the caller keeps it with the
  record the entry stands for). A sealed page left empty is deleted in the same transaction, and a scan moves the
  header past the deleted pages at its front.
- Every page and header is written with the ETag it was read with, so concurrent writers never lose each other's
  entries: a conflict fails the caller's whole transaction, and the caller stages again.

The index remembers each shard's open page, so listing an entry costs one bulk read, as one document per shard
did; the header is read again only when that page turned out sealed or gone.
"""

import logging
import zlib
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from dapr.aio.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation
from pydantic import BaseModel

from service_runtime.dapr_state import StateDelete, StateWrite, as_operations, insert_if_absent

logger = logging.getLogger(__name__)

READ_ROUNDS = 4
"""Bulk reads `stage` makes at most before it calls the index too busy to stage on (another writer keeps moving
the open page): one in the common case, three when the open page moved."""
COMPACT_ATTEMPTS = 5


def shard_of(key: str, shard_count: int) -> int:
    """The shard that lists entries sharded by `key` (an order id, so one order's entries share a shard)."""
    return zlib.crc32(key.encode()) % shard_count


class IndexBusyError(RuntimeError):
    """The index changed under every read of `stage`, or an entry's page is gone: read the records again, retry."""


class IndexHeader(BaseModel):
    first: int = 0
    """The lowest page that may still exist: pages below it were deleted."""
    last: int = 0
    """The open page: the only one that takes new entries."""


class IndexPage(BaseModel):
    entries: dict[str, str] = {}
    """Entry id -> its value, in the order they were added."""
    sealed: bool = False
    """Full once: it takes no new entries and is deleted once empty."""


@dataclass(frozen=True)
class Listing:
    """A new entry for `shard`."""

    shard: int
    entry_id: str
    value: str


@dataclass(frozen=True)
class Relisting:
    """An entry's new value (None: unlist it), in the page it went into."""

    shard: int
    page: int
    entry_id: str
    value: str | None


@dataclass(frozen=True)
class Staged:
    writes: list[StateWrite | StateDelete]
    """The page and header writes, each by the ETag read, for the caller's transaction."""
    pages: dict[str, int]
    """The page each new entry went into, by entry id."""

    def operations(self) -> list[TransactionalStateOperation]:
        return as_operations(self.writes)


@dataclass(frozen=True)
class ListedPage:
    """A page as a scan read it."""

    shard: int
    number: int
    entries: dict[str, str]
    sealed: bool
    etag: str


@dataclass
class _Read:
    """A page read for staging: None where it does not exist, and whether staging changed it."""

    page: IndexPage | None
    etag: str | None
    changed: bool = False
    new: bool = False


@dataclass
class PagedIndex:
    client: DaprClient
    store: str
    name: str
    shard_count: int
    capacity: int
    """Most entries in a page."""
    keys_per_read: int = 32
    """Most headers or pages in one bulk read of a scan."""
    _open_pages: dict[int, int] = field(default_factory=dict)
    """Shard -> its open page, as last read."""

    def shard_of(self, key: str) -> int:
        return shard_of(key, self.shard_count)

    def header_key(self, shard: int) -> str:
        return f"{self.name}|{shard}"

    def page_key(self, shard: int, page: int) -> str:
        return f"{self.name}|{shard}|{page}"

    async def create(self) -> None:
        """Each shard's header and first page, where missing: pages are written by ETag, so they must exist first.
        The page goes first, so a header never names an open page that is missing."""
        empty_page, empty_header = IndexPage().model_dump_json(), IndexHeader().model_dump_json()
        for shard in range(self.shard_count):
            if (await self.client.get_state(self.store, self.header_key(shard))).data:
                continue
            await insert_if_absent(self.client, self.store, self.page_key(shard, 0), empty_page)
            await insert_if_absent(self.client, self.store, self.header_key(shard), empty_header)

    async def stage(self, listings: Sequence[Listing] = (), relistings: Sequence[Relisting] = ()) -> Staged:
        """The writes that list and relist these entries, for one transaction; IndexBusyError (see there)."""
        pages, headers = await self._read_for(listings, relistings)
        for relisting in relistings:
            read = pages[(relisting.shard, relisting.page)]
            if read.page is None:
                raise IndexBusyError(f"{self.page_key(relisting.shard, relisting.page)} is gone")
            if relisting.value is None:
                read.page.entries.pop(relisting.entry_id, None)
            else:
                read.page.entries[relisting.entry_id] = relisting.value
            read.changed = True
        placed, opened = self._place(listings, pages, headers)
        writes: list[StateWrite | StateDelete] = []
        for (shard, number), read in pages.items():
            if not read.changed or read.page is None:
                continue
            key = self.page_key(shard, number)
            if read.page.sealed and not read.page.entries:
                writes.append(StateDelete(key, read.etag))
            else:
                writes.append(StateWrite(key, read.page.model_dump_json(), None if read.new else read.etag))
        for shard in opened:
            header, etag = headers[shard]
            writes.append(StateWrite(self.header_key(shard), header.model_dump_json(), etag))
            self._open_pages[shard] = header.last
        return Staged(writes, placed)

    async def _read_for(
        self, listings: Sequence[Listing], relistings: Sequence[Relisting]
    ) -> tuple[dict[tuple[int, int], _Read], dict[int, tuple[IndexHeader, str]]]:
        """The pages the relistings are in, each listed shard's open page, and the header of each shard whose open
        page is not known, turned out sealed or gone, or will be overfilled."""
        pages: dict[tuple[int, int], _Read] = {}
        headers: dict[int, tuple[IndexHeader, str]] = {}
        added = Counter(listing.shard for listing in listings)
        want_pages = {(relisting.shard, relisting.page) for relisting in relistings}
        want_headers = set()
        for shard in added:
            if shard in self._open_pages:
                want_pages.add((shard, self._open_pages[shard]))
            else:
                want_headers.add(shard)
        for _ in range(READ_ROUNDS):
            await self._read(pages, headers, want_pages - pages.keys(), want_headers - headers.keys())
            want_pages, want_headers = set(), set()
            for shard, count in added.items():
                if shard in headers:
                    self._open_pages[shard] = headers[shard][0].last
                number = self._open_pages[shard]
                read = pages.get((shard, number))
                if read is None:
                    want_pages.add((shard, number))
                elif read.page is None or read.page.sealed:  # it moved on since it was read: read where it is now
                    if shard in headers:  # the header read is older than the page read: read both again
                        del headers[shard], pages[(shard, number)]
                    want_headers.add(shard)
                elif len(read.page.entries) + count > self.capacity and shard not in headers:
                    want_headers.add(shard)  # a page will be opened: the header is written by its ETag
            if not want_pages and not want_headers:
                return pages, headers
        raise IndexBusyError(f"{self.name}: the open pages kept moving while staging")

    def _place(
        self,
        listings: Sequence[Listing],
        pages: dict[tuple[int, int], _Read],
        headers: dict[int, tuple[IndexHeader, str]],
    ) -> tuple[dict[str, int], set[int]]:
        """Put each new entry in its shard's open page, sealing it and opening the next (in `headers`) when full:
        the page of each entry, and the shards whose header moved on."""
        placed, opened = {}, set()
        for listing in listings:
            number = headers[listing.shard][0].last if listing.shard in headers else self._open_pages[listing.shard]
            read = pages[(listing.shard, number)]
            if read.page is None:
                raise IndexBusyError(f"{self.page_key(listing.shard, number)} is gone")
            if len(read.page.entries) >= self.capacity:
                read.page.sealed, read.changed = True, True
                header = headers[listing.shard][0]
                header.last = number = number + 1
                read = pages[(listing.shard, number)] = _Read(IndexPage(), None, new=True)
                opened.add(listing.shard)
            page = read.page
            assert page is not None
            page.entries[listing.entry_id] = listing.value
            read.changed = True
            placed[listing.entry_id] = number
        return placed, opened

    async def _read(
        self,
        pages: dict[tuple[int, int], _Read],
        headers: dict[int, tuple[IndexHeader, str]],
        want_pages: set[tuple[int, int]],
        want_headers: set[int],
    ) -> None:
        keys = [self.page_key(*page) for page in want_pages] + [self.header_key(shard) for shard in want_headers]
        if not keys:
            return
        found = {item.key: item for item in (await self.client.get_bulk_state(self.store, keys)).items if item.data}
        for shard, number in want_pages:
            item = found.get(self.page_key(shard, number))
            pages[(shard, number)] = (
                _Read(IndexPage.model_validate_json(item.data), item.etag) if item is not None else _Read(None, None)
            )
        for shard in want_headers:
            item = found.get(self.header_key(shard))
            if item is None:
                raise IndexBusyError(f"{self.header_key(shard)} is missing: was the index created?")
            headers[shard] = (IndexHeader.model_validate_json(item.data), item.etag)

    async def scan(self, shards: Sequence[int]) -> AsyncGenerator[ListedPage, None]:
        """Every page of these shards, shard by shard in the order given, each shard's pages in order, at most
        `keys_per_read` documents per bulk read. Moves each header read to completion past its deleted pages."""
        for start in range(0, len(shards), self.keys_per_read):
            chunk = shards[start : start + self.keys_per_read]
            response = await self.client.get_bulk_state(self.store, [self.header_key(shard) for shard in chunk])
            read = {item.key: item for item in response.items if item.data}
            headers = {shard: (IndexHeader.model_validate_json(read[self.header_key(shard)].data),
                               read[self.header_key(shard)].etag)
                       for shard in chunk if self.header_key(shard) in read}  # fmt: skip
            wanted = [(shard, number) for shard in chunk if shard in headers
                      for number in range(headers[shard][0].first, headers[shard][0].last + 1)]  # fmt: skip
            lowest: dict[int, int] = {}
            for first in range(0, len(wanted), self.keys_per_read):
                batch = wanted[first : first + self.keys_per_read]
                response = await self.client.get_bulk_state(self.store, [self.page_key(*page) for page in batch])
                found = {item.key: item for item in response.items if item.data}
                for shard, number in batch:
                    item = found.get(self.page_key(shard, number))
                    if item is None:
                        continue
                    lowest.setdefault(shard, number)
                    page = IndexPage.model_validate_json(item.data)
                    yield ListedPage(shard, number, page.entries, page.sealed, item.etag)
            for shard, (header, etag) in headers.items():
                if lowest.get(shard, header.last) > header.first:
                    await self._move_first(shard, header, etag, lowest.get(shard, header.last))

    async def _move_first(self, shard: int, header: IndexHeader, etag: str, first: int) -> None:
        """Best effort: a writer that opened a page meanwhile wins, and a later scan tries again."""
        moved = IndexHeader(first=first, last=header.last).model_dump_json()
        try:
            await self.client.execute_state_transaction(self.store, as_operations([StateWrite(
                self.header_key(shard), moved, etag)]))  # fmt: skip
        except Exception as error:  # the SDK raises bare gRPC errors from transactions; a conflict is the rule
            logger.info("index header changed while moving past deleted pages", extra={"error": repr(error)})

    async def unlist(self, page: ListedPage, entry_ids: Sequence[str]) -> None:
        """Remove entries from a page a scan read (deleting it if sealed and left empty); best effort: a page that
        keeps changing is left for the next scan."""
        gone, etag, current = set(entry_ids), page.etag, IndexPage(entries=page.entries, sealed=page.sealed)
        key = self.page_key(page.shard, page.number)
        for _ in range(COMPACT_ATTEMPTS):
            current.entries = {id_: value for id_, value in current.entries.items() if id_ not in gone}
            write: StateWrite | StateDelete = (
                StateDelete(key, etag)
                if current.sealed and not current.entries
                else StateWrite(key, current.model_dump_json(), etag)
            )
            try:
                await self.client.execute_state_transaction(self.store, as_operations([write]))
            except Exception as error:  # a writer changed the page meanwhile: read it again
                logger.info("index page changed while unlisting, retrying", extra={"page": key, "error": repr(error)})
                response = await self.client.get_state(self.store, key)
                if not response.data:
                    return
                current, etag = IndexPage.model_validate_json(response.data), response.etag
                continue
            return
