"""Fixtures of the shipping-mock tests: an in-process carrier (lifespan included) behind an httpx client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from shipping_mock.config import Settings
from shipping_mock.main import create_app
from shipping_mock_testkit import StartCarrier

TEST_SETTINGS: dict[str, Any] = {
    "random_seed": 20240601,
    "hold_seconds": 0.2,
    "delivery_after_seconds": 0.05,
    "webhook_retry_initial_seconds": 0.01,
    "webhook_retry_max_seconds": 0.05,
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_carrier_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings come from the test, never from CARRIER_* variables of the shell running it."""
    for name in list(os.environ):
        if name.upper().startswith("CARRIER_"):
            monkeypatch.delenv(name)


@pytest.fixture
async def start_carrier() -> AsyncIterator[StartCarrier]:
    """Start carriers (``await start_carrier(hold_seconds=...)``); all are shut down after the test."""
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> httpx.AsyncClient:
            app = create_app(Settings(**{**TEST_SETTINGS, **overrides}))
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://carrier.test")
            )

        yield start


@pytest.fixture
async def carrier(start_carrier: StartCarrier) -> httpx.AsyncClient:
    """A carrier with the test settings and no faults."""
    return await start_carrier()
