"""Order events delivered by the sidecar: the subscription (routed by CloudEvent type) and its endpoints.

Events of the contract that this service does not handle go to a default route that acknowledges them (Dapr would
otherwise send every event that matches no rule to the dead-letter topic). Poison (not a CloudEvent, a type the
contract does not define, data that does not fit its type) is answered DROP: dead-lettered.
"""

import logging

from fastapi import APIRouter, Request
from order_contracts.cloudevents import UnknownEventTypeError, UnreadableEventError, parse_cloud_event, read_event
from order_contracts.dapr import DeliveryAnswer, DeliveryStatus, Routes, Subscription, route_by_type
from order_contracts.events import OrderCreated
from order_contracts.names import DEAD_LETTER_TOPIC

from fulfillment_service.adapters.carrier import CarrierUnavailableError
from fulfillment_service.api.deps import FulfillmentHandlersDep
from fulfillment_service.config import Settings

logger = logging.getLogger(__name__)

ORDER_CREATED_PATH = "/events/order-created"
OTHER_EVENTS_PATH = "/events/other"

router = APIRouter(tags=["dapr"])


@router.get("/dapr/subscribe", summary="Subscriptions, as Dapr reads them at start")
async def subscriptions(request: Request) -> list[Subscription]:
    settings: Settings = request.app.state.settings
    return [
        Subscription(
            pubsubname=settings.pubsub,
            topic=settings.topic,
            routes=Routes(
                rules=[route_by_type(OrderCreated.event_type, ORDER_CREATED_PATH)], default=OTHER_EVENTS_PATH
            ),
            dead_letter_topic=DEAD_LETTER_TOPIC,
        )
    ]


@router.post(ORDER_CREATED_PATH, summary="Pick a new order up (called by the sidecar)")
async def on_order_created(request: Request, handlers: FulfillmentHandlersDep) -> DeliveryAnswer:
    try:
        cloud_event = parse_cloud_event(await request.body())
        event = read_event(cloud_event)
    except (UnreadableEventError, UnknownEventTypeError) as error:
        logger.warning("dropping unreadable event", extra={"reason": str(error)})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    if not isinstance(event, OrderCreated):
        logger.warning("dropping misrouted event", extra={"event_id": cloud_event.id, "type": cloud_event.type})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    try:
        await handlers.fulfil(event)
    except CarrierUnavailableError as error:
        logger.warning("carrier unavailable, retrying", extra={"order_id": event.order_id, "error": str(error)})
        return DeliveryAnswer(status=DeliveryStatus.RETRY)
    return DeliveryAnswer(status=DeliveryStatus.SUCCESS)


@router.post(OTHER_EVENTS_PATH, summary="Acknowledge events this service does not handle (called by the sidecar)")
async def on_other_event(request: Request) -> DeliveryAnswer:
    """The default route: events of the contract that this service has no use for are acknowledged; anything that
    is not an event of the contract at all (poison, or a type newer than this build) is dead-lettered."""
    try:
        read_event(parse_cloud_event(await request.body()))
    except (UnreadableEventError, UnknownEventTypeError) as error:
        logger.warning("dropping unreadable event", extra={"reason": str(error)})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    return DeliveryAnswer(status=DeliveryStatus.SUCCESS)
