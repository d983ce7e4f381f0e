"""The outbox relay: publishes what the order service owes the broker, until the broker has it.

Two paths, one loop (so they never overlap in one process):
- **Fresh**: a new order's `order.created.v1` is handed over right after its commit (`notify`) and published from
  memory, many at once in one bulk publish, then settled in one transaction. Nothing of that order can be owed
  before it, so it cannot overtake anything.
- **Scan**: every `scan_interval`, after any other event is owed (a cancellation), and while publishing fails, the
  index is read a shard at a time and everything listed is published, one order's events one at a time in the
  order they were recorded (a wave per position: the first owed event of every order, then the second, ...), and
  an order whose event is refused is left for the next scan with everything after it. The scan also picks up what
  a crashed process or another replica left behind, and drops settled ids from the index.

While publishing fails (the broker is down or paused) the relay backs off, up to `max_backoff`, and never blocks a
request: accepting orders only needs the state store. Every read and every publish is bounded by `page_size`.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from order_service.adapters.events import AbstractEventPublisher
from order_service.adapters.outbox import AbstractOutbox, OutboxEntry

logger = logging.getLogger(__name__)


@dataclass
class RelayStatus:
    owed: int = 0
    """Entries found owed by the last scan, or handed over and not yet published."""
    publishing: str = "ok"
    last_error: str | None = None
    last_published_at: datetime | None = None
    failing_since: datetime | None = None


class PublishRefusedError(Exception):
    """The publish call failed as a whole (the broker is down, paused or too slow)."""


@dataclass
class OutboxRelay:
    outbox: AbstractOutbox
    publisher: AbstractEventPublisher
    publish_timeout: float = 2.0
    page_size: int = 256
    """Most entries read, published or settled in one call: a backlog of any size is drained page by page."""
    scan_interval: float = 1.0
    max_backoff: float = 8.0
    status: RelayStatus = field(default_factory=RelayStatus)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _fresh: list[OutboxEntry] = field(default_factory=list)
    _scan_soon: bool = True

    def notify(self, entries: list[OutboxEntry]) -> None:
        """These entries were just committed to the outbox."""
        for entry in entries:
            if entry.opens_order and self.status.publishing == "ok":
                self._fresh.append(entry)
            else:  # while publishing fails, nothing is held in memory: the scan that follows the outage finds it
                self._scan_soon = True
        self._wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.scan_interval
        next_scan = loop.time()
        while True:
            if self.status.publishing == "ok":
                # Not asyncio.wait_for: on 3.11 it swallows a cancel that meets a wake-up, and run() never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_scan - loop.time())):
                        if not self._fresh and not self._scan_soon:
                            await self._wake.wait()
            else:
                await asyncio.sleep(backoff)  # a wake-up must not turn an outage into a busy loop
            self._wake.clear()
            try:
                if self.status.publishing == "ok" and self._fresh:
                    await self.relay_fresh()
                if self._scan_soon or loop.time() >= next_scan or self.status.publishing != "ok":
                    self._scan_soon = False
                    next_scan = loop.time() + self.scan_interval
                    await self.relay_once()
            except Exception as error:
                logger.warning("outbox relay cycle failed", extra={"error": repr(error)})
                self._failing(repr(error))
            backoff = self.scan_interval if self.status.publishing == "ok" else min(backoff * 2, self.max_backoff)

    async def relay_fresh(self) -> None:
        """Publish the new orders' first events handed over so far (not those handed over meanwhile: a scan may be
        due), a page per bulk publish."""
        fresh, self._fresh = self._fresh, []
        for start in range(0, len(fresh), self.page_size):
            batch = fresh[start : start + self.page_size]
            self.status.owed = len(fresh) - start
            try:
                published = await self._publish_wave(batch)
            except PublishRefusedError:
                return  # they stay owed: the scan, once publishing works again, has them
            if published:
                await self.outbox.settle(published)
            if len(published) < len(batch):
                return

    async def relay_once(self) -> bool:
        """Scan the index and publish everything owed; True if all of it went out."""
        owed = published_count = 0
        blocked: set[str] = set()
        published_ids: set[str] = set()
        async for page in self.outbox.owed(self.page_size):
            settled_ids = list(page.settled_ids)
            owed += len(page.entries)
            per_order: dict[str, list[OutboxEntry]] = defaultdict(list)
            for entry in page.entries:
                per_order[entry.partition_key].append(entry)
            for position in range(max((len(entries) for entries in per_order.values()), default=0)):
                wave = [entries[position] for order_id, entries in per_order.items()
                        if len(entries) > position and order_id not in blocked]  # fmt: skip
                if not wave:
                    break
                try:
                    published = await self._publish_wave(wave)
                except PublishRefusedError:
                    self.status.owed = owed
                    return False  # the broker is unreachable: try nothing else until the next scan
                blocked |= {entry.partition_key for entry in wave} - {entry.partition_key for entry in published}
                if published:
                    await self.outbox.settle(published)
                    settled_ids += [entry.event_id for entry in published]
                    published_ids |= {entry.event_id for entry in published}
                    published_count += len(published)
            if settled_ids:
                await self.outbox.compact(page, settled_ids)
        self._fresh = [entry for entry in self._fresh if entry.event_id not in published_ids]
        self.status.owed = owed - published_count
        if published_count:
            logger.info("outbox relayed", extra={"published": published_count, "owed": owed})
        if blocked:
            return False
        self._ok()
        return True

    async def _publish_wave(self, wave: list[OutboxEntry]) -> list[OutboxEntry]:
        """Publish entries of distinct orders in one call: those the broker took (it may refuse some, one by one).
        PublishRefusedError if the call failed or timed out."""
        try:
            async with asyncio.timeout(self.publish_timeout):
                refused = await self.publisher.publish(wave)
        except Exception as error:
            self._failing(repr(error))
            logger.warning("publish failed, events stay owed", extra={"events": len(wave), "error": repr(error)})
            raise PublishRefusedError from error
        published = [entry for entry in wave if entry.event_id not in refused]
        if refused:
            self._failing(next(iter(refused.values())))
            logger.warning("broker refused events, they stay owed", extra={"refused": len(refused)})
        self.status.last_published_at = datetime.now(UTC)
        return published

    def _ok(self) -> None:
        self.status.publishing, self.status.last_error, self.status.failing_since = "ok", None, None

    def _failing(self, error: str) -> None:
        if self.status.publishing != "failing":
            self.status.failing_since = datetime.now(UTC)
        self.status.publishing, self.status.last_error = "failing", error
