"""Order events delivered by the sidecar: the subscription to order-events (routed by CloudEvent type) and its
endpoints.

Only the sidecar may call them (app API token, api/deps.py). Events of the contract that this service does not
handle go to a default route that acknowledges them (Dapr would otherwise send every event that matches no rule to
the dead-letter topic). Poison (not a CloudEvent, a type the contract does not define, data that does not fit its
type) is answered DROP: dead-lettered. No endpoint waits on the carrier: the shipping worker does that.
"""

import logging

from fastapi import APIRouter, Request
from order_contracts.cloudevents import UnknownEventTypeError, UnreadableEventError, parse_cloud_event, read_event
from order_contracts.dapr import DeliveryAnswer, DeliveryStatus, Routes, Subscription, route_by_type
from order_contracts.events import EventData, OrderCancelled, OrderCreated

from fulfillment_service.api.deps import FromSidecar, FulfillmentHandlersDep, SettingsDep

logger = logging.getLogger(__name__)

ORDER_CREATED_PATH = "/events/order-created"
ORDER_CANCELLED_PATH = "/events/order-cancelled"
OTHER_EVENTS_PATH = "/events/other"

router = APIRouter(tags=["dapr"], dependencies=[FromSidecar])


@router.get("/dapr/subscribe", summary="Subscriptions, as Dapr reads them at start")
async def subscriptions(settings: SettingsDep) -> list[Subscription]:
    return [
        Subscription(
            pubsubname=settings.pubsub,
            topic=settings.subscription_topic,
            routes=Routes(
                rules=[
                    route_by_type(OrderCreated.event_type, ORDER_CREATED_PATH),
                    route_by_type(OrderCancelled.event_type, ORDER_CANCELLED_PATH),
                ],
                default=OTHER_EVENTS_PATH,
            ),
            dead_letter_topic=settings.dead_letter_topic,
        )
    ]


async def _read(request: Request) -> EventData | None:
    """The delivered event, or None for poison (logged)."""
    try:
        return read_event(parse_cloud_event(await request.body()))
    except (UnreadableEventError, UnknownEventTypeError) as error:
        logger.warning("dropping unreadable event", extra={"reason": str(error)})
        return None


@router.post(ORDER_CREATED_PATH, summary="Pick a new order up (called by the sidecar)")
async def on_order_created(request: Request, handlers: FulfillmentHandlersDep) -> DeliveryAnswer:
    event = await _read(request)
    if not isinstance(event, OrderCreated):
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    await handlers.pick_up(event)  # an error (state store or broker down) answers 500: Dapr redelivers
    return DeliveryAnswer(status=DeliveryStatus.SUCCESS)


@router.post(ORDER_CANCELLED_PATH, summary="Stop fulfilling a cancelled order (called by the sidecar)")
async def on_order_cancelled(request: Request, handlers: FulfillmentHandlersDep) -> DeliveryAnswer:
    event = await _read(request)
    if not isinstance(event, OrderCancelled):
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    await handlers.cancel(event)
    return DeliveryAnswer(status=DeliveryStatus.SUCCESS)


@router.post(OTHER_EVENTS_PATH, summary="Acknowledge events this service does not handle (called by the sidecar)")
async def on_other_event(request: Request) -> DeliveryAnswer:
    """The default route: events of the contract that this service has no use for are acknowledged; anything that
    is not an event of the contract at all (poison, or a type newer than this build) is dead-lettered."""
    event = await _read(request)
    return DeliveryAnswer(status=DeliveryStatus.DROP if event is None else DeliveryStatus.SUCCESS)
