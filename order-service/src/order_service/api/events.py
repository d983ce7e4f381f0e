"""Fulfillment events delivered by the sidecar: the subscription declaration and the endpoint that folds progress.

The one subscription, to fulfillment-events, has a default route (Dapr dead-letters events that match no rule) and a
dead-letter topic. Fulfillment events are folded; anything else is answered DROP, so it is dead-lettered: poison, a
type outside the contract, and an event of the contract on the wrong topic (an order.* event published there is a
publisher's mistake: kept where it shows, not acknowledged away).
Only the sidecar may call these endpoints: it proves itself with the `dapr-api-token` header (see deps.py); any
other caller is answered 401.
"""

import logging

from fastapi import APIRouter, Request
from order_contracts.cloudevents import (
    UnknownEventTypeError,
    UnreadableEventError,
    parse_cloud_event,
    read_event,
)
from order_contracts.dapr import DeliveryAnswer, DeliveryStatus, Routes, Subscription
from order_contracts.events import FULFILLMENT_EVENT_MODELS

from order_service.api.deps import OrderHandlersDep, SidecarOnly
from order_service.api.problems import PROBLEM_RESPONSES
from order_service.config import Settings
from order_service.domain import OrderNotFoundError

logger = logging.getLogger(__name__)

EVENTS_PATH = "/events/fulfillment-events"

router = APIRouter(tags=["dapr"])


@router.get(
    "/dapr/subscribe", summary="Subscriptions, as Dapr reads them at start", responses={401: PROBLEM_RESPONSES[401]}
)
async def subscriptions(request: Request, _: SidecarOnly) -> list[Subscription]:
    settings: Settings = request.app.state.settings
    return [
        Subscription(
            pubsubname=settings.pubsub,
            topic=settings.subscription_topic,
            routes=Routes(default=EVENTS_PATH),
            dead_letter_topic=settings.dead_letter_topic,
        )
    ]


@router.post(
    EVENTS_PATH,
    summary="Fold fulfillment progress into the order (called by the sidecar)",
    responses={401: PROBLEM_RESPONSES[401]},
)
async def on_fulfillment_event(request: Request, handlers: OrderHandlersDep, _: SidecarOnly) -> DeliveryAnswer:
    try:
        cloud_event = parse_cloud_event(await request.body())
    except UnreadableEventError as error:
        logger.warning("dropping undecodable delivery", extra={"reason": str(error)})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    try:
        event = read_event(cloud_event)
    except UnknownEventTypeError:
        # Not in the contract (perhaps a newer type than this build knows): dead-lettered, so it can be replayed
        # once this service understands it, never silently lost.
        logger.warning("dropping event of unknown type", extra={"event_id": cloud_event.id, "type": cloud_event.type})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    except UnreadableEventError as error:
        logger.warning("dropping unreadable event", extra={"event_id": cloud_event.id, "reason": str(error)})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    if not isinstance(event, FULFILLMENT_EVENT_MODELS):
        logger.warning(
            "dropping event that is not a fulfillment event",
            extra={"event_id": cloud_event.id, "type": cloud_event.type},
        )
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    try:
        await handlers.fold_event(event, event_id=cloud_event.id)
    except OrderNotFoundError:
        logger.warning("dropping event for unknown order", extra={"event_id": cloud_event.id})
        return DeliveryAnswer(status=DeliveryStatus.DROP)
    return DeliveryAnswer(status=DeliveryStatus.SUCCESS)
