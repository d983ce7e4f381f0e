"""What both apps' tests need to deliver bulk batches to their event endpoints as the sidecar does: the batch, the
app's answer read entry by entry, and an in-memory dead-letter topic. Imported by tests only."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from order_contracts.dapr import BulkEntry

from service_runtime.dead_letters import AbstractDeadLetters


class FakeDeadLetters(AbstractDeadLetters):
    """Records what the app put on the dead-letter topic; `failing` makes the broker refuse."""

    def __init__(self) -> None:
        self.letters: list[BulkEntry] = []
        self.failing: Exception | None = None

    async def put(self, entry: BulkEntry) -> None:
        if self.failing is not None:
            raise self.failing
        self.letters.append(entry)


def bulk_delivery(topic: str, *events: object) -> dict[str, Any]:
    """A bulk delivery as the sidecar sends it: entry ids are the events' positions in the batch."""
    return {
        "id": "batch-1",
        "type": "com.dapr.event.sent.bulk",
        "topic": topic,
        "pubsubname": "order-pubsub",
        "metadata": {},
        "entries": [
            {"entryId": str(index), "event": event, "contentType": "application/cloudevents+json", "metadata": {}}
            for index, event in enumerate(events)
        ],
    }


@dataclass(frozen=True)
class BulkSidecar:
    """Delivers to an app (in process) as its sidecar does, and sees what the app dead-lettered."""

    client: httpx.AsyncClient
    path: str
    topic: str
    headers: Mapping[str, str]
    """The sidecar's token header."""
    dead_letters: FakeDeadLetters = field(default_factory=FakeDeadLetters)

    async def deliver_batch(self, *events: object) -> list[str]:
        """Deliver the events in one batch; the status of each, by position: the app's answer, or DROP for an entry
        the app dead-lettered (it answers those SUCCESS: service_runtime/dead_letters.py)."""
        already = len(self.dead_letters.letters)
        response = await self.client.post(
            self.path,
            content=json.dumps(bulk_delivery(self.topic, *events)),
            headers={"Content-Type": "application/json", **self.headers},
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert set(answer) == {"statuses"}
        assert [status["entryId"] for status in answer["statuses"]] == [str(index) for index in range(len(events))]
        dead_lettered = {letter.entry_id for letter in self.dead_letters.letters[already:]}
        return ["DROP" if status["entryId"] in dead_lettered else status["status"] for status in answer["statuses"]]

    async def deliver(self, event: object) -> str:
        """Deliver one event, alone in its batch; its status."""
        [status] = await self.deliver_batch(event)
        return status
