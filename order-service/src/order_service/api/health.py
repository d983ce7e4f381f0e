"""Liveness and readiness."""

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", summary="The sidecar and the state store are usable")
async def readyz(request: Request, response: Response) -> Health:
    readiness = request.app.state.readiness
    if await readiness.check():
        return Health(status="ready")
    response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="not ready")
