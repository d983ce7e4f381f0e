"""The fulfillment service's app: assembles routers and builds its clients once, in the lifespan."""

import logging.config
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import uvicorn
from dapr.aio.clients import DaprClient
from fastapi import FastAPI

from fulfillment_service.adapters.carrier import DaprInvokedCarrier
from fulfillment_service.adapters.events import DaprEventPublisher
from fulfillment_service.adapters.records import DaprFulfillmentRecords
from fulfillment_service.api import events, health
from fulfillment_service.config import Settings, get_settings
from fulfillment_service.handlers import FulfillmentHandlers

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {"uvicorn.access": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

CARRIER_CALL_TIMEOUT_SECONDS = 120.0
"""Our side of the call to the sidecar: longer than Dapr's whole retry budget (resiliency.yaml), which governs."""


KEEP_ALIVE_SECONDS = 75
"""Longer than clients keep idle pooled connections: with uvicorn's 5 s default, a client reusing a connection just
as the server closes it sees a reset (seen under a 1,000-order burst)."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    sidecar_port = int(os.environ.get("DAPR_HTTP_PORT", settings.dapr_http_port))
    async with (
        DaprClient() as dapr,
        httpx.AsyncClient(timeout=CARRIER_CALL_TIMEOUT_SECONDS) as http,
    ):
        app.state.fulfillment_handlers = FulfillmentHandlers(
            records=DaprFulfillmentRecords(dapr, settings.state_store),
            carrier=DaprInvokedCarrier(
                http, sidecar_url=f"http://127.0.0.1:{sidecar_port}", endpoint=settings.carrier_endpoint
            ),
            publisher=DaprEventPublisher(dapr, pubsub=settings.pubsub, topic=settings.topic, source=settings.app_id),
        )
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Fulfillment Service",
        version="1.0.0",
        summary="Ships orders through the carrier and reports progress on order-events.",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.include_router(events.router)
    app.include_router(health.router)
    return app


def run() -> None:
    settings = get_settings()
    logging.config.dictConfig(LOG_CONFIG)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=LOG_CONFIG,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
