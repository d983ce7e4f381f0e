"""The order service dies (SIGKILL) right after the state transaction that stores an order and owes its event,
before anything is published. The order was stored, so it must still be published and ship once the service is
back: its relay finds the event in the outbox."""

import os
import signal

import httpx
import pytest

from tests.support.instances import ORDER_SERVICE, Instances, kill_listener
from tests.support.orders import new_order, wait_for_status


def test_an_order_stored_just_before_a_crash_is_published_and_ships_after_restart(
    instances: Instances, order_api: httpx.Client
) -> None:
    kill_listener(ORDER_SERVICE.app)  # the instance `dapr run` started; its sidecar stays up
    crashing = instances.app(
        "order-service-crashing", "order_service", "order-service", ORDER_SERVICE,
        ORDER_SERVICE_FAULT_CRASH_AFTER_COMMIT="true",
    )  # fmt: skip
    body = new_order()
    key = f"crash-drill-{os.getpid()}-{crashing.pid}"

    with pytest.raises(httpx.TransportError):  # the process dies mid-request: no answer
        order_api.post("/orders", json=body, headers={"Idempotency-Key": key})
    crashing.popen.wait(timeout=10)
    assert crashing.popen.returncode == 128 + signal.SIGKILL  # as `uv run` reports its child's SIGKILL

    instances.app("order-service-restarted", "order_service", "order-service", ORDER_SERVICE)
    replayed = order_api.post("/orders", json=body, headers={"Idempotency-Key": key})

    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"  # it was stored before the crash
    wait_for_status(order_api, replayed.json()["id"], "shipped", timeout=15)
