"""The shipping worker: every carrier call happens here, outside the Kafka delivery path.

Work is persisted before it is acknowledged (the delivery handler stores the record and its work-index entry in
one state transaction), so a crash loses nothing: on start, and every `poll_interval`, the worker reads the index
for what is due: parked orders whose next attempt has come, work whose lease ran out (its worker died), events
recorded but never published. The instance that picked an order up wakes its own worker at once, so the first
carrier call does not wait for a poll.

While the carrier is unavailable, the worker holds what is due for it (`CarrierGate`): the orders wait in the index,
due and unleased, and one of them is tried per probe interval; the first answer from the carrier releases them all.

Replicas share the index. A worker claims an order by writing a lease with the record's ETag; only one claim can
win. The carrier's idempotency key (derived from the order id) covers the rest: a lease that ran out while its
worker was still calling, or a crash between the carrier's answer and its record, repeats the call and gets the
same shipment back.
"""

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from fulfillment_service.adapters.carrier import AbstractCarrier, CarrierRejectedError, CarrierUnavailableError
from fulfillment_service.adapters.events import AbstractEventPublisher
from fulfillment_service.adapters.fulfillments import (
    SHARD_COUNT,
    AbstractFulfillmentStore,
    ConcurrentUpdateError,
    StoredFulfillment,
)
from fulfillment_service.domain import FulfillmentRecord, FulfillmentStatus, RetryPolicy

logger = logging.getLogger(__name__)

CONFLICT_ATTEMPTS = 20
EVERYTHING_INDEXED = datetime.max.replace(tzinfo=UTC)
DUE_PER_POLL = 1000
"""At most this many orders are taken from the index per poll (the next poll starts at the next shard): a backlog
of parked orders is worked through in bounded steps, never read whole."""
DUE_PER_POLL_WHILE_HELD = 10
"""While the carrier is held, a poll takes only the longest overdue orders: the next probe, an order at its give-up
time, events owed. The rest wait in the index, unread, until the carrier is back."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class CarrierGate:
    """Whether the worker calls the carrier now, or holds what is due for it because the carrier is unavailable.

    Dapr's circuit breaker (resiliency.yaml) stops the calls from reaching a carrier that keeps failing, but not
    what each refused call costs on our side: two record reads, an `attempt_failed` event, a save, the Order
    Service folding that event. The app cannot ask the sidecar whether the breaker is open. With tens of thousands
    of orders parked during an outage, their retries alone took both cores and starved pickups. So once an attempt
    finds the carrier unavailable, the gate closes: due orders wait in the work index (due, unleased, no attempt
    counted), and one call per `probe_interval` goes through. The first answer from the carrier (a shipment or a
    rejection) opens the gate, and the worker reads the index for everything due at once.

    Per instance, in memory: a restarted worker starts open and finds out with its first call.
    """

    def __init__(self, probe_interval: timedelta) -> None:
        self._probe_interval = probe_interval
        self._next_probe_at: datetime | None = None
        """None while open."""

    @property
    def is_open(self) -> bool:
        return self._next_probe_at is None

    def admits(self, now: datetime) -> bool:
        """Whether a call may go now: always while open; while closed, once per probe interval."""
        if self._next_probe_at is None:
            return True
        if now < self._next_probe_at:
            return False
        self._next_probe_at = now + self._probe_interval
        return True

    def found_unavailable(self, now: datetime, error: str) -> None:
        if self._next_probe_at is None:
            self._next_probe_at = now + self._probe_interval
            logger.warning(
                "carrier unavailable: holding the orders due for it, one is tried every %s s",
                self._probe_interval.total_seconds(),
                extra={"error": error},
            )

    def answered(self) -> bool:
        """The carrier answered: the gate opens. True if it was closed."""
        was_closed, self._next_probe_at = self._next_probe_at is not None, None
        if was_closed:
            logger.info("carrier answered again: releasing the orders held for it")
        return was_closed


@dataclass(frozen=True)
class WorkerSettings:
    worker_id: str
    """Stable across restarts of one instance: after a crash it resumes its own leased work at once."""
    retry_policy: RetryPolicy
    lease_for: timedelta
    """Longer than one carrier attempt through the sidecar can take (all of Dapr's retries included)."""
    poll_interval: timedelta
    max_concurrent_calls: int
    probe_interval: timedelta
    """While the carrier is unavailable, how often one held order is tried to find out whether it is back."""


class ShippingWorker:
    def __init__(
        self,
        store: AbstractFulfillmentStore,
        carrier: AbstractCarrier,
        publisher: AbstractEventPublisher,
        settings: WorkerSettings,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._carrier = carrier
        self._publisher = publisher
        self._settings = settings
        self._clock = clock
        self._calls = asyncio.Semaphore(settings.max_concurrent_calls)
        self._gate = CarrierGate(settings.probe_interval)
        self._poll_now = False
        self._woken: list[str] = []
        self._wakeup = asyncio.Event()
        self._in_progress: dict[str, asyncio.Task[None]] = {}
        self._look_again: set[str] = set()
        self._next_shard = 0

    @property
    def worker_id(self) -> str:
        return self._settings.worker_id

    def pickup_lease(self) -> timedelta | None:
        """How long a new pickup is leased to this worker: not at all while the carrier is held (the order waits in
        the index, due, for any worker whose carrier answers)."""
        return self._settings.lease_for if self._gate.is_open else None

    def wake(self, order_id: str) -> None:
        """Look at this order now (it was just picked up, cancelled or delivered by this instance)."""
        self._woken.append(order_id)
        self._wakeup.set()

    async def run(self) -> None:
        """Until cancelled: first everything indexed (this instance's own leases from before a restart included),
        then what is woken, and what the index says is due every poll interval."""
        await self._start_due(EVERYTHING_INDEXED)
        next_poll = asyncio.get_running_loop().time() + self._settings.poll_interval.total_seconds()
        while True:
            woken, self._woken = self._woken, []
            for order_id in woken:
                self._start(order_id)
            loop_time = asyncio.get_running_loop().time()
            if loop_time >= next_poll or self._poll_now:
                self._poll_now = False
                await self._start_due(self._clock())
                next_poll = loop_time + self._settings.poll_interval.total_seconds()
            with suppress(TimeoutError):
                # Not asyncio.wait_for: on 3.11 it swallows a cancel that meets a wake-up, and run() never stops.
                async with asyncio.timeout(max(0.0, next_poll - loop_time)):
                    await self._wakeup.wait()
            self._wakeup.clear()

    async def stop(self) -> None:
        tasks = list(self._in_progress.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _start_due(self, by: datetime) -> None:
        try:
            limit = DUE_PER_POLL if self._gate.is_open else DUE_PER_POLL_WHILE_HELD
            due = await self._store.due(by, limit=limit, first_shard=self._next_shard)
            self._next_shard = (self._next_shard + 1) % SHARD_COUNT
        except Exception:
            logger.exception("could not read the work index")
            return
        for order_id in due:
            self._start(order_id)

    def _start(self, order_id: str) -> None:
        if order_id in self._in_progress:
            self._look_again.add(order_id)  # it may be past its last read of the record
            return
        task = asyncio.create_task(self._work_on(order_id), name=f"fulfil {order_id}")
        self._in_progress[order_id] = task
        task.add_done_callback(partial(self._finished, order_id))

    def _finished(self, order_id: str, _: "asyncio.Task[None]") -> None:
        self._in_progress.pop(order_id, None)
        if order_id in self._look_again:
            self._look_again.discard(order_id)
            self.wake(order_id)

    async def _work_on(self, order_id: str) -> None:
        try:
            for _ in range(CONFLICT_ATTEMPTS):
                try:
                    await self._advance(order_id)
                except ConcurrentUpdateError:
                    continue  # someone else changed the record: look again
                return
            logger.warning("gave up on a contended order for now", extra={"order_id": order_id})
        except asyncio.CancelledError:
            raise
        except Exception:
            # The index still lists it: a later poll tries again.
            logger.exception("fulfillment step failed", extra={"order_id": order_id})

    async def _advance(self, order_id: str) -> None:
        """Take the order as far as it goes now: publish what it owes, call the carrier when due (and the gate admits
        the call), record the answer."""
        admitted: bool | None = None  # asked once per look: a probe stays admitted through its claim
        while True:
            stored = await self._store.get(order_id)
            if stored is None:
                return
            record, now = stored.record, self._clock()
            if record.owed_events:
                await self._publish_owed(stored, now)
                continue
            if record.is_leased_to_another(self.worker_id, now):
                return
            due = record.is_due(now)
            if due and admitted is None:
                admitted = self._gate.admits(now) or self._gives_up_now(record, now)
            if not (due and admitted):
                # Nothing to call for now (work done or cancelled; or held, to wait in the index for the carrier to
                # be back): a lease left over is dropped, so the index lists the order by when it is due, if at all.
                if record.lease is not None:
                    record.lease = None
                    await self._store.save(record, stored, now=now)
                return
            if not record.is_leased_to(self.worker_id, now):
                record.claim(self.worker_id, now=now, lease_for=self._settings.lease_for)
                await self._store.save(record, stored, now=now)
                continue
            waits_for_a_slot = self._calls.locked()
            async with self._calls:
                if waits_for_a_slot and not await self._unchanged_and_still_mine(order_id, stored.etag):
                    continue  # while it waited for a free slot: cancelled, or its lease ran out; look again
                if record.status is FulfillmentStatus.PENDING:
                    after = await self._ship(record)
                else:  # VOIDING, or a search for a shipment nobody heard of
                    after = await self._void(record)
            if after is None or not (after.owed_events or after.is_due(self._clock())):
                return

    def _gives_up_now(self, record: FulfillmentRecord, now: datetime) -> bool:
        """An order at its give-up time gets its last attempt even while the carrier is held, so a long outage still
        ends it `failed` rather than holding it forever."""
        policy = self._settings.retry_policy
        return record.status is FulfillmentStatus.PENDING and policy.gives_up(picked_up_at=record.picked_up_at, at=now)

    def _carrier_answered(self) -> None:
        if self._gate.answered():
            self._poll_now = True  # what was held is due now: read the index without waiting for the next poll
            self._wakeup.set()

    async def _unchanged_and_still_mine(self, order_id: str, etag: str) -> bool:
        current = await self._store.get(order_id)
        return (
            current is not None and current.etag == etag and current.record.is_leased_to(self.worker_id, self._clock())
        )

    async def _ship(self, record: FulfillmentRecord) -> FulfillmentRecord | None:
        policy, order_id = self._settings.retry_policy, record.order_id
        try:
            shipment = await self._carrier.create_shipment(record.order)
        except CarrierRejectedError as rejection:
            self._carrier_answered()
            reason = str(rejection)
            logger.info("carrier rejected the shipment", extra={"order_id": order_id, "reason": reason})
            return await self._record(order_id, lambda r, at: r.record_rejection(reason, at=at))
        except CarrierUnavailableError as unavailable:
            error = str(unavailable)
            self._gate.found_unavailable(self._clock(), error)
            logger.warning("shipping attempt failed", extra={"order_id": order_id, "error": error})
            return await self._record(order_id, lambda r, at: r.record_failed_attempt(error, at=at, policy=policy))
        else:
            self._carrier_answered()
            logger.info("shipment created", extra={"order_id": order_id, "shipment_id": shipment.shipment_id})
            return await self._record(order_id, lambda r, at: r.record_shipment(shipment, at=at))

    async def _void(self, record: FulfillmentRecord) -> FulfillmentRecord | None:
        """Void the order's shipment: the one recorded (cancelled after it was created), or whatever the carrier
        holds under the order's reference after a call whose answer nobody heard (cancelled, or given up on)."""
        policy, order_id = self._settings.retry_policy, record.order_id
        try:
            if record.status is FulfillmentStatus.VOIDING and record.shipment is not None:
                shipment, voided_already = record.shipment, False
            else:
                found = await self._carrier.find_shipment(order_id)
                if found is None:
                    logger.info("the carrier has no shipment for the order", extra={"order_id": order_id})
                    return await self._record(order_id, lambda r, _: r.record_nothing_found())
                shipment, voided_already = found.shipment, found.voided
        except CarrierUnavailableError as unavailable:
            return await self._void_failed(order_id, unavailable)
        try:
            if not voided_already:
                await self._carrier.void_shipment(shipment.shipment_id)
        except CarrierRejectedError as refusal:
            self._carrier_answered()
            reason = str(refusal)
            logger.warning(
                "carrier refused to void: the shipment is live", extra={"order_id": order_id, "reason": reason}
            )
            return await self._record(
                order_id, lambda r, at: r.record_void_refused(shipment, reason, at=at, policy=policy)
            )
        except CarrierUnavailableError as unavailable:
            return await self._void_failed(order_id, unavailable)
        self._carrier_answered()
        logger.info("shipment voided", extra={"order_id": order_id, "shipment_id": shipment.shipment_id})
        return await self._record(order_id, lambda r, at: r.record_void(shipment, at=at))

    async def _void_failed(self, order_id: str, unavailable: CarrierUnavailableError) -> FulfillmentRecord | None:
        """The carrier could not be reached to find or void the shipment: asked again later, with backoff."""
        error, policy = str(unavailable), self._settings.retry_policy
        self._gate.found_unavailable(self._clock(), error)
        logger.warning("void attempt failed", extra={"order_id": order_id, "error": error})
        return await self._record(order_id, lambda r, at: r.record_failed_void(error, at=at, policy=policy))

    async def _record(
        self, order_id: str, apply: Callable[[FulfillmentRecord, datetime], None]
    ) -> FulfillmentRecord | None:
        """Apply the carrier's answer to the record as it is now (a cancel may have come in during the call),
        publish what that owes, and commit it: the record as committed. Read again, not the record read before the
        call: what is published before the commit must follow from the record being committed, so a cancel that
        came in during the call must be seen before the answer's events go out."""
        published: set[str] = set()
        for _ in range(CONFLICT_ATTEMPTS):
            stored = await self._store.get(order_id)
            if stored is None:
                return None
            now = self._clock()
            apply(stored.record, now)
            await self._publisher.publish_owed(stored.record, published)
            try:
                await self._store.save(stored.record, stored, now=now)
            except ConcurrentUpdateError:
                continue
            return stored.record
        raise ConcurrentUpdateError(order_id)

    async def _publish_owed(self, stored: StoredFulfillment, now: datetime) -> None:
        """Publish the owed events in order (same ids as before, should they have gone out already), then forget
        them. A publish that fails leaves them owed: the next look at the order tries again."""
        owed = list(stored.record.owed_events)
        for event in owed:
            await self._publisher.publish(event)
        stored.record.settle(owed)
        await self._store.save(stored.record, stored, now=now)
