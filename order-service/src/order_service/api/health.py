"""Readiness (liveness, `/healthz`, is service_runtime.liveness)."""

from fastapi import APIRouter, Request, Response, status

from order_service.adapters.readiness import Readiness

router = APIRouter(tags=["health"])


@router.get(
    "/readyz",
    summary="Orders can be accepted: the sidecar and the state store answer",
    description="A broker outage shows in `event_publishing` and `events_owed` but does not fail readiness: "
    "accepted orders wait in the outbox until the broker is back.",
    responses={503: {"model": Readiness, "description": "Not ready: the state store does not answer."}},
)
async def readyz(request: Request, response: Response) -> Readiness:
    readiness: Readiness = await request.app.state.readiness.check()
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness
