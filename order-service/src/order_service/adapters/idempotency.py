"""Idempotency keys of `POST /orders`: the port, and its adapter over the Dapr state API.

A key is claimed by inserting its record if absent (first-write concurrency without an ETag), so of concurrent
requests with one key exactly one wins. The record names the order id the winner creates, which makes it safe
for a later request to finish the job if the winner crashed between claiming and storing.
"""

import hashlib
from abc import ABC, abstractmethod
from datetime import datetime

from dapr.aio.clients import DaprClient
from pydantic import BaseModel
from service_runtime.dapr_state import insert_if_absent


class IdempotencyRecord(BaseModel):
    request_fingerprint: str
    order_id: str
    claimed_at: datetime


class AbstractIdempotencyKeys(ABC):
    @abstractmethod
    async def claim(self, key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store `record` under `key` unless the key is taken: None if we got it, else the record that holds it."""


def state_key(idempotency_key: str) -> str:
    """Keys are client-chosen text: hash them into a fixed, safe state key."""
    return "idempotency-key|" + hashlib.sha256(idempotency_key.encode()).hexdigest()


class DaprIdempotencyKeys(AbstractIdempotencyKeys):
    def __init__(self, client: DaprClient, store_name: str, *, ttl_seconds: int) -> None:
        self._client = client
        self._store = store_name
        self._ttl = {"ttlInSeconds": str(ttl_seconds)}

    async def claim(self, key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        if await insert_if_absent(
            self._client, self._store, state_key(key), record.model_dump_json(), metadata=self._ttl
        ):
            return None
        existing = await self._client.get_state(self._store, state_key(key))
        return IdempotencyRecord.model_validate_json(existing.data)
