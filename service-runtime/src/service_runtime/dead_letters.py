"""Poison in a bulk delivery, dead-lettered by the app itself rather than answered DROP.

Dapr 1.18.2 mishandles DROP in a bulk delivery over HTTP (`pkg/runtime/subscription/postman/http/http.go`,
`DeliverBulk`): it looks the dropped entry up by its position in the whole batch, but in a list that holds only the
entries handed to the app on this try. When the runtime kept an entry back (one that is not JSON), or when the
resiliency policy retries only the entries that failed before, that list is shorter: the sidecar dead-letters the
wrong message, or panics (`index out of range`) and takes the app's deliveries down with it. Found by
tests/e2e/test_dead_letters.py, which puts every kind of poison on every partition.

So each app answers such an entry SUCCESS once it has published it, as delivered and under its Kafka key, to its
subscription's dead-letter topic (raw: no second CloudEvent around it), which is what the sidecar would have done.
If that publish fails, the entry is answered RETRY: delivered again, never lost. The dead-letter tooling
(`make dead-letters`, `make replay-dead-letters`) reads both kinds of letter alike.

Nothing tells anyone by itself that a letter was sent, so every app counts what it dead-letters
(`DeadLetterTally`, kept by `CountingDeadLetters` around the real adapter): readiness says `degraded` once there is
one, and `/metrics` has the counts (service_runtime/metrics.py). The count is this process's, since it started: the
list of record, pending or replayed, is the dead-letter topics themselves (`make dead-letters`). Dead letters the
sidecar sends itself (an entry that is not JSON) are not in it; daprd's own metrics count those.
"""

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dapr.aio.clients import DaprClient
from order_contracts.dapr import BulkAnswer, BulkDelivery, BulkEntry, DeliveryStatus, EntryStatus

logger = logging.getLogger(__name__)

KAFKA_KEY_METADATA = "__key"
"""Kafka's message key, in a delivered entry's metadata and, on publish, where the component takes the key from."""


class AbstractDeadLetters(ABC):
    @abstractmethod
    async def put(self, entry: BulkEntry) -> None:
        """Publish the entry, as delivered, to the dead-letter topic; raises if the broker did not take it."""


class DaprDeadLetters(AbstractDeadLetters):
    def __init__(self, client: DaprClient, *, pubsub: str, topic: str) -> None:
        self._client = client
        self._pubsub = pubsub
        self._topic = topic

    async def put(self, entry: BulkEntry) -> None:
        metadata = {"rawPayload": "true"}
        if KAFKA_KEY_METADATA in entry.metadata:
            metadata[KAFKA_KEY_METADATA] = entry.metadata[KAFKA_KEY_METADATA]
        await self._client.publish_event(
            self._pubsub,
            self._topic,
            json.dumps(entry.event),
            data_content_type=entry.content_type or "application/json",
            publish_metadata=metadata,
        )


@dataclass
class DeadLetterTally:
    """What this process put on its subscription's dead-letter topic since it started, and failed to."""

    topic: str
    dead_lettered: int = 0
    failed: int = 0
    """Entries the broker did not take: answered RETRY, so delivered (and dead-lettered) again."""
    last_at: datetime | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def record(self) -> None:
        self.dead_lettered += 1
        self.last_at = datetime.now(UTC)

    def degraded_reason(self) -> str | None:
        """Why readiness is degraded on account of dead letters, or None while there are none."""
        if self.dead_lettered == 0:
            return None
        last = f", the last at {self.last_at.isoformat()}" if self.last_at is not None else ""
        return (
            f"{self.dead_lettered} event(s) dead-lettered to {self.topic} since {self.started_at.isoformat()}{last}: "
            "`make dead-letters` lists them, `make replay-dead-letters` puts them back"
        )


class CountingDeadLetters(AbstractDeadLetters):
    """Another AbstractDeadLetters, counted in `tally`."""

    def __init__(self, inner: AbstractDeadLetters, tally: DeadLetterTally) -> None:
        self._inner = inner
        self.tally = tally

    async def put(self, entry: BulkEntry) -> None:
        try:
            await self._inner.put(entry)
        except Exception:
            self.tally.failed += 1
            raise
        self.tally.record()


async def answer(
    delivery: BulkDelivery, statuses: dict[str, DeliveryStatus], dead_letters: AbstractDeadLetters
) -> BulkAnswer:
    """The answer to a batch, each entry to be dropped dead-lettered first: SUCCESS once it is, RETRY if not."""
    answered: list[EntryStatus] = []
    for entry in delivery.entries:
        status = statuses[entry.entry_id]
        if status is DeliveryStatus.DROP:
            try:
                await dead_letters.put(entry)
            except Exception as error:  # the broker is down: the entry comes again, and is dead-lettered then
                logger.warning("could not dead-letter", extra={"entry_id": entry.entry_id, "error": repr(error)})
                status = DeliveryStatus.RETRY
            else:
                logger.warning(
                    "dead-lettered", extra={"entry_id": entry.entry_id, "key": entry.metadata.get(KAFKA_KEY_METADATA)}
                )
                status = DeliveryStatus.SUCCESS
        answered.append(EntryStatus(entry_id=entry.entry_id, status=status))
    return BulkAnswer(statuses=answered)
