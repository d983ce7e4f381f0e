"""Fixtures shared by the unit and API tests: the fakes of the service's ports."""

import pytest
from fulfillment_fakes import FakeClock, FakeEventPublisher, FakeFulfillmentStore, RecordingWaker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store() -> FakeFulfillmentStore:
    return FakeFulfillmentStore()


@pytest.fixture
def publisher() -> FakeEventPublisher:
    return FakeEventPublisher()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wakes() -> RecordingWaker:
    return RecordingWaker()
