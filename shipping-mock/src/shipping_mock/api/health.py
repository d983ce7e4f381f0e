"""Liveness: answers while the process serves HTTP, whatever the fault settings say."""

from __future__ import annotations

from fastapi import APIRouter

from shipping_mock.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    return Health()
