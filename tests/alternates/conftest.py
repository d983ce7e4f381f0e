"""The system on PostgreSQL: the same launcher, `dapr run -f` and apps, with components/alternates/postgres/ in place
of the SQLite state stores (what `make up STATE_STORE=postgres` runs). Its own pytest session (`make
test-alternates`): it binds the same ports as the default stack."""

import pytest
from devstack.state_stores import StateStoreKind


@pytest.fixture(scope="session")
def state_store() -> StateStoreKind:
    return "postgres"
