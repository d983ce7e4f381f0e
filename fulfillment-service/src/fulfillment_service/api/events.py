"""Order events delivered by the sidecar: the bulk subscription to order-events and its endpoint.

The sidecar hands over batches of up to `bulk_max_events` events (order_contracts/dapr.py), in their partitions'
order, to one path: routing rules would split a batch by event type, and the runtime calls the paths in no fixed
order, so an order's cancellation could be handled before its creation. This endpoint dispatches by type itself,
in order: each run of new orders is picked up together (one transaction, one publish), a cancellation on its own.
An event of an order whose earlier event in the batch failed is not handled and is answered RETRY too, so the
runtime redelivers both in their order.

Only the sidecar may call it (app API token, api/deps.py). Events of the contract that this service does not handle
are acknowledged. Poison (not a CloudEvent, a type the contract does not define, data that does not fit its type)
is dead-lettered (by the app: service_runtime/dead_letters.py says why not by answering DROP). Nothing here waits on
the carrier: the shipping worker does that.
"""

import logging

from fastapi import APIRouter, HTTPException, Request, status
from order_contracts.cloudevents import CloudEvent, UnknownEventTypeError, UnreadableEventError, read_event
from order_contracts.dapr import (
    BulkAnswer,
    BulkDelivery,
    BulkEntry,
    BulkSubscribe,
    DeliveryStatus,
    Routes,
    Subscription,
)
from order_contracts.events import EventData, OrderCancelled, OrderCreated
from pydantic import ValidationError
from service_runtime.dead_letters import answer

from fulfillment_service.api.deps import DeadLettersDep, FromSidecar, FulfillmentHandlersDep, SettingsDep
from fulfillment_service.api.problems import PROBLEM_RESPONSES
from fulfillment_service.handlers import FulfillmentHandlers

logger = logging.getLogger(__name__)

EVENTS_PATH = "/events/order-events"

router = APIRouter(tags=["dapr"], dependencies=[FromSidecar], responses={401: PROBLEM_RESPONSES[401]})

BULK_DELIVERY_SCHEMA = {
    "type": "object",
    "description": BulkDelivery.__doc__,
    "required": ["entries"],
    "properties": {"entries": {"type": "array", "items": BulkEntry.model_json_schema(by_alias=True)}},
}
"""The body the sidecar delivers (``BulkDelivery``), read raw by the endpoint and so documented by hand."""


@router.get("/dapr/subscribe", summary="Subscriptions, as Dapr reads them at start")
async def subscriptions(settings: SettingsDep) -> list[Subscription]:
    return [
        Subscription(
            pubsubname=settings.pubsub,
            topic=settings.subscription_topic,
            routes=Routes(default=EVENTS_PATH),
            dead_letter_topic=settings.dead_letter_topic,
            bulk_subscribe=BulkSubscribe(
                max_messages_count=settings.bulk_max_events, max_await_duration_ms=settings.bulk_max_wait_ms
            ),
        )
    ]


@router.post(
    EVENTS_PATH,
    summary="Pick up new orders and stop cancelled ones, a batch at a time (from the sidecar)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": BULK_DELIVERY_SCHEMA}}}
    },
    responses={
        400: {**PROBLEM_RESPONSES[400], "description": "Not a bulk delivery (the sidecar always sends one)."},
        413: PROBLEM_RESPONSES[413],
    },
)
async def on_order_events(
    request: Request, handlers: FulfillmentHandlersDep, dead_letters: DeadLettersDep
) -> BulkAnswer:
    # Read here, not as a body parameter: FastAPI would parse the body before the token check.
    try:
        delivery = BulkDelivery.model_validate_json(await request.body())
    except ValidationError as error:  # not from a sidecar: a batch it sends always has this shape
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"not a bulk delivery: {error.error_count()}") from error
    batch = _Batch(handlers)
    for entry in delivery.entries:
        await batch.handle(entry.entry_id, _read(entry.event))
    await batch.pick_up_waiting()
    return await answer(delivery, batch.statuses, dead_letters)


class _Batch:
    """The entries of one delivery, handled in order; new orders wait to be picked up together until an event of
    another kind comes (or the batch ends)."""

    def __init__(self, handlers: FulfillmentHandlers) -> None:
        self._handlers = handlers
        self.statuses: dict[str, DeliveryStatus] = {}
        self._waiting: list[tuple[str, OrderCreated]] = []
        self._failed_orders: set[str] = set()

    async def handle(self, entry_id: str, event: EventData | None) -> None:
        if event is None:
            self.statuses[entry_id] = DeliveryStatus.DROP
        elif isinstance(event, OrderCreated):
            self._waiting.append((entry_id, event))
        else:
            await self.pick_up_waiting()
            if event.order_id in self._failed_orders:
                self.statuses[entry_id] = DeliveryStatus.RETRY
            elif isinstance(event, OrderCancelled):
                await self._cancel(entry_id, event)
            else:  # an event of the contract this service has no use for
                self.statuses[entry_id] = DeliveryStatus.SUCCESS

    async def pick_up_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        picked_up = await self._handlers.pick_up_many(
            [order for _, order in waiting if order.order_id not in self._failed_orders]
        )
        for entry_id, order in waiting:
            if order.order_id in picked_up:
                self.statuses[entry_id] = DeliveryStatus.SUCCESS
            else:
                self._failed_orders.add(order.order_id)
                self.statuses[entry_id] = DeliveryStatus.RETRY

    async def _cancel(self, entry_id: str, cancellation: OrderCancelled) -> None:
        try:
            await self._handlers.cancel(cancellation)
        except Exception:  # the state store or the broker: delivered again, with whatever of its order follows
            logger.exception("cancel failed", extra={"order_id": cancellation.order_id})
            self._failed_orders.add(cancellation.order_id)
            self.statuses[entry_id] = DeliveryStatus.RETRY
        else:
            self.statuses[entry_id] = DeliveryStatus.SUCCESS


def _read(delivered: object) -> EventData | None:
    """The delivered event, or None for poison (logged)."""
    try:
        return read_event(CloudEvent.model_validate(delivered))
    except ValidationError as error:
        logger.warning("dropping undecodable delivery", extra={"reason": f"not a CloudEvent: {error.error_count()}"})
    except (UnreadableEventError, UnknownEventTypeError) as error:
        logger.warning("dropping unreadable event", extra={"reason": str(error)})
    return None
