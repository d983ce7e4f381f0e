"""Drills: the stack under failure (broker killed or paused, the order service crashing mid-request). They start
their own stack (`make drills` runs them in a session of their own) because they break it on purpose."""

from collections.abc import Iterator

import httpx
import pytest
from devstack.layout import Layout
from devstack.stack import Stack


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout.discover()


@pytest.fixture(scope="session")
def stack(layout: Layout) -> Iterator[Stack]:
    running = Stack(layout, progress=lambda message: print(f"[stack] {message}"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def order_api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="http://127.0.0.1:8000", timeout=10) as client:
        yield client


@pytest.fixture
def carrier_admin(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="http://127.0.0.1:8002", timeout=10) as client:
        client.delete("/admin/faults").raise_for_status()
        yield client
        client.delete("/admin/faults").raise_for_status()
