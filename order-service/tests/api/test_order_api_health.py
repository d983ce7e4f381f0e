"""Liveness and readiness probes."""

import httpx
import pytest
from fastapi import FastAPI
from order_service_fakes import SIDECAR_HEADERS, FakeReadiness
from service_runtime.bulk_testing import BulkSidecar, FakeDeadLetters
from service_runtime.dead_letters import CountingDeadLetters
from service_runtime.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from service_runtime.serving import thread_pool_calls

pytestmark = pytest.mark.anyio


async def test_the_process_is_alive(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_when_the_state_store_is_usable(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["ready"] is True
    assert response.json()["state_store"] == "ok"


async def test_not_ready_is_a_503(client: httpx.AsyncClient, readiness: FakeReadiness) -> None:
    readiness.ready = False

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["ready"] is False


async def test_metrics_count_what_the_app_dead_lettered(
    app: FastAPI, client: httpx.AsyncClient, dead_letters: FakeDeadLetters
) -> None:
    app.state.dead_letters = CountingDeadLetters(dead_letters, app.state.dead_letter_tally)  # as the lifespan does
    sidecar = BulkSidecar(client, "/events/fulfillment-events", "fulfillment-events", SIDECAR_HEADERS, dead_letters)
    before = (await client.get("/metrics")).text

    assert await sidecar.deliver({"not": "a CloudEvent"}) == "DROP"

    after = await client.get("/metrics")
    assert 'order_platform_dead_letters_total{topic="fulfillment-events-dlq"} 0.0\n' in before
    assert 'order_platform_dead_letters_total{topic="fulfillment-events-dlq"} 1.0\n' in after.text
    assert after.headers["content-type"] == METRICS_CONTENT_TYPE
    assert app.state.dead_letter_tally.degraded_reason() is not None  # what DaprStateReadiness reports


def test_no_endpoint_or_dependency_runs_in_the_thread_pool(app: FastAPI) -> None:
    assert thread_pool_calls(app) == []
