"""Readiness and metrics over HTTP, in process: the state store probe on a fake, dead letters counted as the app
sends them (the lifespan, which never runs here, wraps the real adapter the same way)."""

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from fulfillment_fakes import (
    SIDECAR_HEADERS,
    SIDECAR_TOKEN,
    WEBHOOK_SECRET,
    FakeEventPublisher,
    FakeFulfillmentStore,
    RecordingWaker,
)
from fulfillment_service.config import Settings
from fulfillment_service.handlers import FulfillmentHandlers
from fulfillment_service.main import create_app
from service_runtime.bulk_testing import BulkSidecar, FakeDeadLetters
from service_runtime.dead_letters import CountingDeadLetters
from service_runtime.readiness import AbstractStateStoreProbe

pytestmark = pytest.mark.anyio

LEASE = timedelta(seconds=150)


class FakeStateStoreProbe(AbstractStateStoreProbe):
    def __init__(self) -> None:
        self.answering = True

    async def answers(self) -> bool:
        return self.answering


@pytest.fixture
def probe() -> FakeStateStoreProbe:
    return FakeStateStoreProbe()


@pytest.fixture
def dead_letters() -> FakeDeadLetters:
    return FakeDeadLetters()


@pytest.fixture
def app(
    store: FakeFulfillmentStore,
    publisher: FakeEventPublisher,
    wakes: RecordingWaker,
    probe: FakeStateStoreProbe,
    dead_letters: FakeDeadLetters,
) -> FastAPI:
    app = create_app(Settings(APP_API_TOKEN=SIDECAR_TOKEN, CARRIER_WEBHOOK_SECRET=WEBHOOK_SECRET))
    app.state.state_store_probe = probe
    app.state.dead_letters = CountingDeadLetters(dead_letters, app.state.dead_letter_tally)
    app.state.fulfillment_handlers = FulfillmentHandlers(
        store=store, publisher=publisher, wake_worker=wakes, worker_id="worker-1", pickup_lease=lambda: LEASE
    )
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_ready_and_ok_while_the_state_store_answers_and_nothing_was_dead_lettered(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"ready": True, "status": "ok", "degraded_reason": None, "state_store": "ok",
                               "dead_letters": 0, "last_dead_letter_at": None}  # fmt: skip


async def test_not_ready_is_a_503_while_the_state_store_does_not_answer(
    client: httpx.AsyncClient, probe: FakeStateStoreProbe
) -> None:
    probe.answering = False

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert (response.json()["ready"], response.json()["status"]) == (False, "unavailable")


async def test_poison_dead_lettered_by_the_app_shows_in_readiness_and_metrics(
    client: httpx.AsyncClient, dead_letters: FakeDeadLetters
) -> None:
    sidecar = BulkSidecar(client, "/events/order-events", "order-events", SIDECAR_HEADERS, dead_letters)
    assert await sidecar.deliver_batch({"not": "a CloudEvent"}, {"still": "not one"}) == ["DROP", "DROP"]

    readiness = (await client.get("/readyz")).json()
    metrics = (await client.get("/metrics")).text

    assert (readiness["ready"], readiness["status"], readiness["dead_letters"]) == (True, "degraded", 2)
    assert readiness["degraded_reason"].startswith("2 event(s) dead-lettered to order-events-dlq since ")
    assert readiness["last_dead_letter_at"] is not None
    assert 'order_platform_dead_letters_total{topic="order-events-dlq"} 2.0\n' in metrics
