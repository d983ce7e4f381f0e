"""The order service's app: assembles routers and builds its clients once, in the lifespan."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from dapr.aio.clients import DaprClient
from dapr.conf import settings as dapr_settings
from fastapi import FastAPI
from service_runtime import liveness
from service_runtime.body_limits import SIDECAR_DELIVERIES, BodyLimit, RequestBodyLimits
from service_runtime.dapr_state import check_transactions_roll_back
from service_runtime.dead_letters import CountingDeadLetters, DaprDeadLetters, DeadLetterTally
from service_runtime.metrics import metrics_router
from service_runtime.serving import serve
from service_runtime.sidecar_token import sidecar_api_headers

from order_service.adapters.events import DaprEventPublisher
from order_service.adapters.idempotency import DaprIdempotencyKeys
from order_service.adapters.orders import DaprOrderRepository
from order_service.adapters.outbox import DaprOutbox, OutboxEntry
from order_service.adapters.readiness import DaprStateReadiness
from order_service.api import events, health, orders
from order_service.api.errors import install_domain_error_handlers
from order_service.api.problems import install_problem_handlers
from order_service.config import Settings, get_settings
from order_service.handlers import OrderHandlers
from order_service.relay import OutboxRelay

MAX_BODY_BYTES = 64 * 1024
"""Every body but the sidecar's deliveries: an order of 100 lines at their longest is well under it."""
STATE_WRITE_TIMEOUT_SECONDS = 10.0
"""The transactions that insert an order only if absent (idempotent creates) go through the sidecar's HTTP API."""


def _crash_now(_: list[OutboxEntry]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    async with (
        DaprClient() as dapr,
        httpx.AsyncClient(timeout=STATE_WRITE_TIMEOUT_SECONDS, headers=sidecar_api_headers()) as sidecar_http,
    ):
        await check_transactions_roll_back(dapr, settings.state_store)
        outbox = DaprOutbox(dapr, settings.state_store)
        await outbox.create_index()
        relay = OutboxRelay(
            outbox,
            DaprEventPublisher(dapr, pubsub=settings.pubsub, topic=settings.topic),
            publish_timeout=settings.publish_timeout_seconds,
            scan_interval=settings.relay_scan_interval_seconds,
            max_backoff=settings.relay_max_backoff_seconds,
        )
        app.state.order_handlers = OrderHandlers(
            orders=DaprOrderRepository(
                dapr,
                settings.state_store,
                outbox,
                http=sidecar_http,
                sidecar_url=f"http://127.0.0.1:{dapr_settings.DAPR_HTTP_PORT}",
            ),
            idempotency_keys=DaprIdempotencyKeys(
                dapr, settings.state_store, ttl_seconds=settings.idempotency_key_ttl_seconds
            ),
            event_source=settings.app_id,
            on_events_owed=_crash_now if settings.fault_crash_after_commit else relay.notify,
        )
        tally: DeadLetterTally = app.state.dead_letter_tally
        app.state.dead_letters = CountingDeadLetters(
            DaprDeadLetters(dapr, pubsub=settings.pubsub, topic=settings.dead_letter_topic), tally
        )
        app.state.readiness = DaprStateReadiness(dapr, settings.state_store, relay.status, tally)
        relaying = asyncio.create_task(relay.run(), name="outbox-relay")
        try:
            yield
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Order Service",
        version="1.0.0",
        summary="Accepts, stores and tracks orders; publishes order events on Kafka through Dapr.",
        lifespan=lifespan,
    )
    app.state.settings = settings = settings or get_settings()
    app.state.dead_letter_tally = tally = DeadLetterTally(topic=settings.dead_letter_topic)
    app.include_router(orders.router)
    app.include_router(events.router)
    app.include_router(health.router)
    app.include_router(liveness.router)
    app.include_router(metrics_router(tally))
    install_problem_handlers(app)
    install_domain_error_handlers(app)
    app.add_middleware(
        RequestBodyLimits,
        limits={"/": BodyLimit(max_bytes=MAX_BODY_BYTES), "/events/": SIDECAR_DELIVERIES},
    )
    return app


def run() -> None:
    settings = get_settings()
    serve(create_app(settings), host=settings.host, port=settings.port)
