"""Idempotency keys of `POST /orders`: the port, and its adapter over the Dapr state API.

A key is claimed by inserting its record if absent (first-write concurrency without an ETag), so of concurrent
requests with one key exactly one wins. The record names the order id the winner creates, which makes it safe
for a later request to finish the job if the winner crashed between claiming and storing.
"""

import hashlib
from abc import ABC, abstractmethod
from datetime import datetime

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions
from pydantic import BaseModel

from order_service.adapters.dapr_errors import is_etag_mismatch


class IdempotencyRecord(BaseModel):
    request_fingerprint: str
    order_id: str
    claimed_at: datetime


class AbstractIdempotencyKeys(ABC):
    @abstractmethod
    async def claim(self, key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        """Store `record` under `key` unless the key is taken: None if we got it, else the record that holds it."""


_INSERT_IF_ABSENT = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)


def state_key(idempotency_key: str) -> str:
    """Keys are client-chosen text: hash them into a fixed, safe state key."""
    return "idempotency-key|" + hashlib.sha256(idempotency_key.encode()).hexdigest()


class DaprIdempotencyKeys(AbstractIdempotencyKeys):
    def __init__(self, client: DaprClient, store_name: str, *, ttl_seconds: int) -> None:
        self._client = client
        self._store = store_name
        self._ttl = {"ttlInSeconds": str(ttl_seconds)}

    async def claim(self, key: str, record: IdempotencyRecord) -> IdempotencyRecord | None:
        try:
            await self._client.save_state(
                self._store,
                state_key(key),
                record.model_dump_json(),
                options=_INSERT_IF_ABSENT,
                state_metadata=self._ttl,
            )
        except DaprInternalError as error:
            if not is_etag_mismatch(error):
                raise
            existing = await self._client.get_state(self._store, state_key(key))
            return IdempotencyRecord.model_validate_json(existing.data)
        return None
