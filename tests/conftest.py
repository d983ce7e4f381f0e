"""The real stack for integration and end-to-end tests: Kafka and `dapr run -f dapr.yaml`,
started once per test session by the project's own launcher and stopped (by PID) at the end, pass or fail.

Nothing here is mocked: a missing daprd or broker makes the session fail, never skip.
"""

import shutil
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Consumer
from devstack.layout import Layout
from devstack.stack import Stack
from devstack.state_stores import DEFAULT_STATE_STORE, StateStoreKind

from tests.support.kafka import consumer_at_end


@pytest.fixture(scope="session")
def layout() -> Layout:
    return Layout.discover()


@pytest.fixture(scope="session")
def state_store() -> StateStoreKind:
    """Where the stack's apps keep their state (tests/alternates/ overrides it)."""
    return DEFAULT_STATE_STORE


@pytest.fixture(scope="session")
def from_nothing() -> bool:
    """Whether the session's stack starts without the state and the broker data an earlier stack of this checkout
    left (tests/drills/ overrides it: their audits and readiness checks read the whole stack)."""
    return False


@pytest.fixture(scope="session")
def stack(layout: Layout, state_store: StateStoreKind, from_nothing: bool) -> Iterator[Stack]:
    if from_nothing:
        for data in (layout.state_dir, layout.kafka_data_dir):
            shutil.rmtree(data, ignore_errors=True)
    running = Stack(layout, progress=lambda message: print(f"[stack] {message}"), state_store=state_store)
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
def order_events(stack: Stack) -> Iterator[Consumer]:
    """order-events from now on, read by a plain Kafka consumer."""
    consumer = consumer_at_end("order-events")
    try:
        yield consumer
    finally:
        consumer.close()


@pytest.fixture
def fulfillment_events(stack: Stack) -> Iterator[Consumer]:
    """fulfillment-events from now on, read by a plain Kafka consumer."""
    consumer = consumer_at_end("fulfillment-events")
    try:
        yield consumer
    finally:
        consumer.close()


@pytest.fixture
def carrier_admin(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url="http://127.0.0.1:8002", timeout=10) as client:
        client.delete("/admin/faults").raise_for_status()
        yield client
        client.delete("/admin/faults").raise_for_status()
