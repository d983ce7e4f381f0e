"""The system on PostgreSQL: the same launcher, `dapr run -f` and apps, with components/alternates/postgres/ in place
of the SQLite state stores (what `make up STATE_STORE=postgres` runs). Its own pytest session (`make
test-alternates`): it binds the same ports as the default stack."""

from collections.abc import Iterator

import pytest
from devstack.layout import Layout
from devstack.stack import Stack


@pytest.fixture(scope="session")
def stack(layout: Layout) -> Iterator[Stack]:
    running = Stack(layout, progress=lambda message: print(f"[stack] {message}"), state_store="postgres")
    running.start()
    try:
        yield running
    finally:
        running.stop()
