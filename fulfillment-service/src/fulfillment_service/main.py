"""The fulfillment service's app: assembles routers and builds its clients once, in the lifespan."""

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import aiohttp
import httpx
from dapr.aio.clients import DaprClient
from fastapi import FastAPI
from httpx_aiohttp import AiohttpTransport
from service_runtime import liveness
from service_runtime.body_limits import SIDECAR_DELIVERIES, BodyLimit, RequestBodyLimits
from service_runtime.dapr_state import check_transactions_roll_back
from service_runtime.dead_letters import CountingDeadLetters, DaprDeadLetters, DeadLetterTally
from service_runtime.metrics import metrics_router
from service_runtime.readiness import DaprStateStoreProbe
from service_runtime.serving import serve
from service_runtime.sidecar_token import sidecar_api_headers

from fulfillment_service.adapters.carrier import DaprInvokedCarrier
from fulfillment_service.adapters.events import DaprEventPublisher
from fulfillment_service.adapters.fulfillments import DaprFulfillmentStore
from fulfillment_service.api import events, fulfillments, health, webhooks
from fulfillment_service.api.problems import install_problem_handlers
from fulfillment_service.config import Settings, get_settings
from fulfillment_service.domain import RetryPolicy
from fulfillment_service.handlers import FulfillmentHandlers
from fulfillment_service.worker import ShippingWorker, WorkerSettings

CARRIER_CALL_TIMEOUT_SECONDS = 120.0
"""Our side of the call to the sidecar: longer than Dapr's whole retry budget (resiliency.yaml), which governs."""

MAX_BODY_BYTES = 16 * 1024
"""Every body but the sidecar's deliveries, i.e. the carrier's delivery reports (about 150 bytes each)."""

STATE_WRITE_TIMEOUT_SECONDS = 10.0
"""State transactions go through the sidecar's HTTP API on a client of their own, never queued behind carrier
calls (held up to 10 s per try) and never waiting as long as they may."""


def sidecar_transport() -> AiohttpTransport:
    """httpx's API over aiohttp's connections: httpx's own transport cost about 2 ms of CPU per request, this one
    about 0.45 (the carrier call was a quarter of the app's CPU; bench/results/2026-12-02-http-clients.md). No limit
    on connections: the worker's own semaphore bounds concurrent carrier calls (max_concurrent_carrier_calls), and a
    pool must not queue them behind it (aiohttp's default of 100 would, silently)."""
    return AiohttpTransport(client=lambda: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(
        worker_id=settings.worker_id,
        retry_policy=RetryPolicy(
            first_delay=timedelta(seconds=settings.retry_first_delay_seconds),
            max_delay=timedelta(seconds=settings.retry_max_delay_seconds),
            give_up_after=timedelta(seconds=settings.give_up_after_seconds),
        ),
        lease_for=timedelta(seconds=settings.lease_seconds),
        poll_interval=timedelta(seconds=settings.poll_seconds),
        max_concurrent_calls=settings.max_concurrent_carrier_calls,
        probe_interval=timedelta(seconds=settings.carrier_probe_seconds),
    )


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    sidecar_port = int(os.environ.get("DAPR_HTTP_PORT", settings.dapr_http_port))
    async with (
        DaprClient() as dapr,
        httpx.AsyncClient(
            timeout=CARRIER_CALL_TIMEOUT_SECONDS, transport=sidecar_transport(), headers=sidecar_api_headers()
        ) as http,
        httpx.AsyncClient(
            timeout=STATE_WRITE_TIMEOUT_SECONDS, transport=sidecar_transport(), headers=sidecar_api_headers()
        ) as state_http,
    ):
        await check_transactions_roll_back(dapr, settings.state_store)
        sidecar_url = f"http://127.0.0.1:{sidecar_port}"
        store = DaprFulfillmentStore(dapr, settings.state_store, http=state_http, sidecar_url=sidecar_url)
        await store.create_index()
        publisher = DaprEventPublisher(dapr, pubsub=settings.pubsub, topic=settings.topic, source=settings.app_id)
        carrier = DaprInvokedCarrier(http, sidecar_url=sidecar_url, endpoint=settings.carrier_endpoint)
        worker = ShippingWorker(store, carrier, publisher, worker_settings(settings))
        app.state.dead_letters = CountingDeadLetters(
            DaprDeadLetters(dapr, pubsub=settings.pubsub, topic=settings.dead_letter_topic), app.state.dead_letter_tally
        )
        app.state.state_store_probe = DaprStateStoreProbe(dapr, settings.state_store)
        app.state.fulfillment_handlers = FulfillmentHandlers(
            store=store,
            publisher=publisher,
            wake_worker=worker.wake,
            worker_id=worker.worker_id,
            pickup_lease=worker.pickup_lease,
        )
        worker_task = asyncio.create_task(worker.run(), name="shipping worker")
        try:
            yield
        finally:
            worker_task.cancel()
            with suppress(asyncio.CancelledError):
                await worker_task
            await worker.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="Fulfillment Service",
        version="1.0.0",
        summary="Ships orders through the carrier and reports progress on fulfillment-events.",
        lifespan=lifespan,
    )
    app.state.settings = settings = settings or get_settings()
    app.state.dead_letter_tally = tally = DeadLetterTally(topic=settings.dead_letter_topic)
    install_problem_handlers(app)
    app.include_router(events.router)
    app.include_router(webhooks.router)
    app.include_router(fulfillments.router)
    app.include_router(liveness.router)
    app.include_router(health.router)
    app.include_router(metrics_router(tally))
    app.add_middleware(
        RequestBodyLimits,
        limits={"/": BodyLimit(max_bytes=MAX_BODY_BYTES), "/events/": SIDECAR_DELIVERIES},
    )
    return app


def run() -> None:
    settings = get_settings()
    serve(create_app(settings), host=settings.host, port=settings.port)
