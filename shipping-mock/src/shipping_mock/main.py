"""Application factory, lifespan and entry point of the shipping mock."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from fastapi import FastAPI
from httpx_aiohttp import AiohttpTransport
from service_runtime.body_limits import BodyLimit, RequestBodyLimits

from shipping_mock.api import admin, carrier, health
from shipping_mock.api.openapi import install_openapi_documentation
from shipping_mock.api.problems import install_problem_handlers
from shipping_mock.config import Settings, get_settings
from shipping_mock.json_logging import configure_logging, log_event
from shipping_mock.state import CarrierState

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
"""Every body the carrier takes: the largest is a shipment request of 500 lines, each SKU 64 characters, which stays
under 256 KiB even with every character JSON-escaped."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A carrier mock with its own, empty, in-memory state."""
    settings = settings or get_settings()
    state = CarrierState.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds,
            headers={"User-Agent": "shipping-mock-webhooks/0.1"},
            follow_redirects=False,
            # httpx's API over aiohttp's connections: httpx's own transport cost the mock about 2 ms of CPU per
            # report, this one about 0.45 (bench/results/2026-12-02-http-clients.md).
            transport=AiohttpTransport(),
        ) as webhook_client:
            state.deliveries.start(webhook_client)
            log_event(
                logger,
                logging.INFO,
                "carrier_started",
                carrier=settings.carrier_name,
                webhooks=state.deliveries.enabled,
                random_seed=settings.random_seed,
            )
            try:
                yield
            finally:
                pending = state.deliveries.pending
                await state.deliveries.cancel_all()
                log_event(logger, logging.INFO, "carrier_stopped", cancelled_delivery_reports=pending)

    app = FastAPI(
        title=f"{settings.carrier_name} API (shipping mock)",
        description="A stand-in for a third-party carrier, with fault injection under /admin.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.carrier = state
    install_problem_handlers(app)
    install_openapi_documentation(app)
    app.include_router(carrier.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.add_middleware(RequestBodyLimits, limits={"/": BodyLimit(max_bytes=MAX_BODY_BYTES)})
    return app


def run() -> None:
    """Serve on ``CARRIER_HOST:CARRIER_PORT`` until SIGINT/SIGTERM (uvicorn shuts down gracefully)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        loop="uvloop",
        http="httptools",
    )
