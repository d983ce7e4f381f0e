"""The shipped SQLite state stores delete what expired: the component's sweep is off unless `cleanupInterval` is
set, and expired idempotency records would otherwise stay in the file for ever."""

import pytest
import yaml
from devstack.layout import Layout


@pytest.mark.parametrize("component", ["statestore-orders.yaml", "statestore-fulfillment.yaml"])
def test_every_sqlite_store_sweeps_expired_rows(component: str) -> None:
    document = yaml.safe_load((Layout.discover().root / "components" / component).read_text())
    metadata = {entry["name"]: entry["value"] for entry in document["spec"]["metadata"]}

    assert document["spec"]["type"] == "state.sqlite"
    assert metadata.get("cleanupInterval") not in (None, "0", "0s")
