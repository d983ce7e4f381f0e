"""Liveness and readiness probes."""

import httpx
import pytest
from fastapi import FastAPI
from order_service_fakes import FakeReadiness
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


def test_no_endpoint_or_dependency_runs_in_the_thread_pool(app: FastAPI) -> None:
    assert thread_pool_calls(app) == []
