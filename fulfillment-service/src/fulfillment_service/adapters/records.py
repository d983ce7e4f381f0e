"""What fulfillment remembers per order (Dapr state): so a redelivered order event starts nothing new."""

from abc import ABC, abstractmethod
from datetime import datetime
from enum import StrEnum

from dapr.aio.clients import DaprClient
from order_contracts.events import FulfillmentFailed, FulfillmentShipped
from pydantic import BaseModel


class FulfillmentStage(StrEnum):
    PICKED_UP = "picked_up"
    SHIPPED = "shipped"
    FAILED = "failed"


class FulfillmentRecord(BaseModel):
    order_id: str
    stage: FulfillmentStage
    picked_up_at: datetime
    attempts: int = 0
    outcome: FulfillmentShipped | FulfillmentFailed | None = None
    """The terminal event, kept so a redelivery can publish it again (its publish may have been lost)."""


class AbstractFulfillmentRecords(ABC):
    @abstractmethod
    async def get(self, order_id: str) -> FulfillmentRecord | None: ...

    @abstractmethod
    async def save(self, record: FulfillmentRecord) -> None: ...


class DaprFulfillmentRecords(AbstractFulfillmentRecords):
    def __init__(self, client: DaprClient, store_name: str) -> None:
        self._client = client
        self._store = store_name

    async def get(self, order_id: str) -> FulfillmentRecord | None:
        response = await self._client.get_state(self._store, order_id)
        return FulfillmentRecord.model_validate_json(response.data) if response.data else None

    async def save(self, record: FulfillmentRecord) -> None:
        await self._client.save_state(self._store, record.order_id, record.model_dump_json())
