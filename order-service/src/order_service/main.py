"""The order service's app: assembles routers and builds its clients once, in the lifespan."""

import logging.config
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from dapr.aio.clients import DaprClient
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from order_service.adapters.events import DaprEventPublisher
from order_service.adapters.orders import DaprOrderRepository
from order_service.adapters.readiness import DaprStateReadiness
from order_service.api import events, health, orders
from order_service.api.body_limits import RequestBodyLimits
from order_service.api.problems import install_problem_handlers, problem_response
from order_service.config import Settings, get_settings
from order_service.domain import OrderNotFoundError
from order_service.handlers import OrderHandlers

MAX_BODY_BYTES = 64 * 1024

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
    "loggers": {"uvicorn.access": {"level": "WARNING"}},
}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with DaprClient() as dapr:
        app.state.order_handlers = OrderHandlers(
            orders=DaprOrderRepository(dapr, settings.state_store),
            publisher=DaprEventPublisher(dapr, pubsub=settings.pubsub, topic=settings.topic, source=settings.app_id),
        )
        app.state.readiness = DaprStateReadiness(dapr, settings.state_store)
        yield


async def order_not_found(request: Request, error: Exception) -> JSONResponse:
    return problem_response(404, "Not Found", str(error))


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Order Service",
        version="1.0.0",
        summary="Accepts, stores and tracks orders; publishes order events on Kafka through Dapr.",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.include_router(orders.router)
    app.include_router(events.router)
    app.include_router(health.router)
    install_problem_handlers(app)
    app.add_exception_handler(OrderNotFoundError, order_not_found)
    app.add_middleware(RequestBodyLimits, max_bytes=MAX_BODY_BYTES, path_prefix=orders.router.prefix)
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
    )
