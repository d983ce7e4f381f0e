"""Fulfillment events delivered by the sidecar: the subscription declaration and the endpoint that folds progress.

The one subscription, to fulfillment-events, is a bulk subscription (order_contracts/dapr.py): the sidecar hands over
batches of up to `bulk_max_events` events, and the app folds a batch with one read and one transaction. It has a
single route (Dapr dead-letters events that match no route) and a dead-letter topic. Fulfillment events are folded;
anything else is dead-lettered, by the app (service_runtime/dead_letters.py says why it does not answer DROP):
poison, a type outside the contract, and an event of the contract on the wrong topic (an order.* event published
there is a publisher's mistake: kept where it shows, not acknowledged away).
Only the sidecar may call these endpoints: it proves itself with the `dapr-api-token` header (see deps.py); any
other caller is answered 401.
"""

import logging

from fastapi import APIRouter, Request
from order_contracts.cloudevents import CloudEvent, UnknownEventTypeError, UnreadableEventError, read_event
from order_contracts.dapr import (
    BulkAnswer,
    BulkDelivery,
    BulkSubscribe,
    DeliveryStatus,
    Routes,
    Subscription,
)
from order_contracts.events import FULFILLMENT_EVENT_MODELS
from pydantic import ValidationError
from service_runtime.dead_letters import answer

from order_service.api.deps import DeadLettersDep, OrderHandlersDep, SidecarOnly
from order_service.api.problems import PROBLEM_RESPONSES, ProblemError, status_title
from order_service.config import Settings
from order_service.handlers import DeliveredEvent, FoldOutcome

logger = logging.getLogger(__name__)

EVENTS_PATH = "/events/fulfillment-events"

STATUS_OF_OUTCOME = {
    FoldOutcome.FOLDED: DeliveryStatus.SUCCESS,
    FoldOutcome.UNKNOWN_ORDER: DeliveryStatus.DROP,
    FoldOutcome.NOT_FOLDED: DeliveryStatus.RETRY,
}

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
            bulk_subscribe=BulkSubscribe(
                max_messages_count=settings.bulk_max_events, max_await_duration_ms=settings.bulk_max_wait_ms
            ),
        )
    ]


@router.post(
    EVENTS_PATH,
    summary="Fold a batch of fulfillment progress into the orders (called by the sidecar)",
    responses={400: PROBLEM_RESPONSES[400], 401: PROBLEM_RESPONSES[401]},
)
async def on_fulfillment_events(
    request: Request, handlers: OrderHandlersDep, dead_letters: DeadLettersDep, _: SidecarOnly
) -> BulkAnswer:
    # Read here, not as a body parameter: FastAPI would parse the body before the token check.
    try:
        delivery = BulkDelivery.model_validate_json(await request.body())
    except ValidationError as error:  # not from a sidecar: a batch it sends always has this shape
        raise ProblemError(400, status_title(400), f"Not a bulk delivery: {error.error_count()} violations.") from error
    statuses: dict[str, DeliveryStatus] = {}
    readable: list[tuple[str, DeliveredEvent]] = []
    for entry in delivery.entries:
        delivered = _fulfillment_event(entry.event)
        if delivered is None:
            statuses[entry.entry_id] = DeliveryStatus.DROP
        else:
            readable.append((entry.entry_id, delivered))
    outcomes = await handlers.fold_events([delivered for _, delivered in readable])
    for (entry_id, delivered), outcome in zip(readable, outcomes, strict=True):
        if outcome is FoldOutcome.UNKNOWN_ORDER:
            logger.warning("dropping event for unknown order", extra={"event_id": delivered.event_id})
        statuses[entry_id] = STATUS_OF_OUTCOME[outcome]
    return await answer(delivery, statuses, dead_letters)


def _fulfillment_event(delivered: object) -> DeliveredEvent | None:
    """The fulfillment event in a delivered CloudEvent, or None (logged) for anything to be dead-lettered."""
    try:
        cloud_event = CloudEvent.model_validate(delivered)
    except ValidationError as error:
        logger.warning("dropping undecodable delivery", extra={"reason": f"not a CloudEvent: {error.error_count()}"})
        return None
    try:
        event = read_event(cloud_event)
    except UnknownEventTypeError:
        # Not in the contract (perhaps a newer type than this build knows): dead-lettered, so it can be replayed
        # once this service understands it, never silently lost.
        logger.warning("dropping event of unknown type", extra={"event_id": cloud_event.id, "type": cloud_event.type})
        return None
    except UnreadableEventError as error:
        logger.warning("dropping unreadable event", extra={"event_id": cloud_event.id, "reason": str(error)})
        return None
    if not isinstance(event, FULFILLMENT_EVENT_MODELS):
        logger.warning(
            "dropping event that is not a fulfillment event",
            extra={"event_id": cloud_event.id, "type": cloud_event.type},
        )
        return None
    return DeliveredEvent(event=event, event_id=cloud_event.id)
