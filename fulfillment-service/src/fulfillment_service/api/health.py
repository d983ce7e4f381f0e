"""Readiness (liveness, `/healthz`, is service_runtime.liveness: the path the sidecar's app health checks probe)."""

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel
from service_runtime.dead_letters import DeadLetterTally
from service_runtime.readiness import AbstractStateStoreProbe

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    ready: bool
    status: Literal["ok", "degraded", "unavailable"]
    degraded_reason: str | None = None
    state_store: Literal["ok", "unavailable"]
    dead_letters: int
    """Events this process dead-lettered since it started (service_runtime/dead_letters.py)."""
    last_dead_letter_at: datetime | None = None


@router.get(
    "/readyz",
    summary="Deliveries can be handled: the sidecar and the state store answer",
    description="Dead letters show in `dead_letters` and make the status `degraded` without failing readiness: "
    "the events behind them are handled.",
    responses={503: {"model": Readiness, "description": "Not ready: the state store does not answer."}},
)
async def readyz(request: Request, response: Response) -> Readiness:
    probe: AbstractStateStoreProbe = request.app.state.state_store_probe
    tally: DeadLetterTally = request.app.state.dead_letter_tally
    store_ok = await probe.answers()
    if not store_ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    reason = tally.degraded_reason()
    return Readiness(
        ready=store_ok,
        status="unavailable" if not store_ok else "degraded" if reason else "ok",
        degraded_reason=reason,
        state_store="ok" if store_ok else "unavailable",
        dead_letters=tally.dead_lettered,
        last_dead_letter_at=tally.last_at,
    )
