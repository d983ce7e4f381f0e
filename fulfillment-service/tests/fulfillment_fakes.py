"""Test doubles for the fulfillment service's ports."""

from fulfillment_service.adapters.carrier import AbstractCarrier, CarrierRejectedError, Shipment
from fulfillment_service.adapters.events import AbstractEventPublisher
from fulfillment_service.adapters.records import AbstractFulfillmentRecords, FulfillmentRecord
from order_contracts.events import EventData, OrderCreated


class FakeFulfillmentRecords(AbstractFulfillmentRecords):
    def __init__(self) -> None:
        self.records: dict[str, str] = {}

    async def get(self, order_id: str) -> FulfillmentRecord | None:
        stored = self.records.get(order_id)
        return FulfillmentRecord.model_validate_json(stored) if stored else None

    async def save(self, record: FulfillmentRecord) -> None:
        self.records[record.order_id] = record.model_dump_json()


class FakeCarrier(AbstractCarrier):
    """Creates one shipment per order id (like the real carrier's idempotency key), or rejects or fails."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.shipments: dict[str, Shipment] = {}
        self.failure: Exception | None = None

    async def create_shipment(self, order: OrderCreated) -> Shipment:
        self.calls.append(order.order_id)
        if self.failure is not None:
            raise self.failure
        return self.shipments.setdefault(
            order.order_id,
            Shipment(shipment_id=f"shp-{order.order_id}", carrier="Fake Parcel", tracking_number=f"T-{order.order_id}"),
        )

    def reject(self, reason: str) -> None:
        self.failure = CarrierRejectedError(reason)


class FakeEventPublisher(AbstractEventPublisher):
    def __init__(self) -> None:
        self.published: list[EventData] = []

    async def publish(self, event: EventData) -> None:
        self.published.append(event)
