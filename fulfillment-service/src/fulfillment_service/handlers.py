"""The fulfillment use case: pick an order up, ship it through the carrier, report progress."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from order_contracts.events import FulfillmentFailed, FulfillmentShipped, FulfillmentStarted, OrderCreated

from fulfillment_service.adapters.carrier import AbstractCarrier, CarrierRejectedError
from fulfillment_service.adapters.events import AbstractEventPublisher
from fulfillment_service.adapters.records import AbstractFulfillmentRecords, FulfillmentRecord, FulfillmentStage

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class FulfillmentHandlers:
    records: AbstractFulfillmentRecords
    carrier: AbstractCarrier
    publisher: AbstractEventPublisher
    clock: Callable[[], datetime] = utc_now

    async def fulfil(self, order: OrderCreated) -> None:
        """Ship a newly created order once; a redelivery of a handled order starts nothing new, but publishes its
        outcome again (same event id: consumers see it once), in case the first publish was lost.

        CarrierUnavailableError propagates: the delivery is retried, and the carrier's idempotency key (derived
        from the order id) keeps the retry from creating a second shipment.
        """
        record = await self.records.get(order.order_id)
        if record is not None and record.outcome is not None:
            logger.info("order already handled", extra={"order_id": order.order_id, "stage": record.stage})
            await self.publisher.publish(record.outcome)
            return
        if record is None:
            record = FulfillmentRecord(
                order_id=order.order_id, stage=FulfillmentStage.PICKED_UP, picked_up_at=self.clock()
            )
            await self.records.save(record)
        await self.publisher.publish(FulfillmentStarted(order_id=order.order_id, picked_up_at=record.picked_up_at))
        record.attempts += 1
        try:
            shipment = await self.carrier.create_shipment(order)
        except CarrierRejectedError as rejection:
            record.stage = FulfillmentStage.FAILED
            record.outcome = FulfillmentFailed(
                order_id=order.order_id, reason=str(rejection), failed_at=self.clock(), attempts=record.attempts
            )
        else:
            record.stage = FulfillmentStage.SHIPPED
            record.outcome = FulfillmentShipped(
                order_id=order.order_id,
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                shipment_id=shipment.shipment_id,
                shipped_at=self.clock(),
                attempts=record.attempts,
            )
        await self.records.save(record)
        await self.publisher.publish(record.outcome)
        logger.info("order fulfilled", extra={"order_id": order.order_id, "stage": record.stage})
