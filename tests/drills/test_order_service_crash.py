"""The order service dies (SIGKILL): right after the state transaction that stores an order and owes its event,
before anything is published (the order was stored, so it must still be published and ship once the service is
back: its relay finds the event in the outbox); and while fulfillment's progress keeps coming (its sidecar cannot
hand over the batches it holds: every event is folded, each order's in order, once the service is back)."""

import os
import signal
from datetime import UTC, datetime

import httpx
import pytest
from devstack import dead_letters

from tests.support.audit import Audit
from tests.support.fulfillment import shipments
from tests.support.instances import ORDER_SERVICE, Instances, kill_listener
from tests.support.load import Load, OrderStream
from tests.support.orders import wait_for_status
from tests.support.polling import eventually

BURST_ORDERS = 60


def test_an_order_stored_just_before_a_crash_is_published_and_ships_after_restart(
    instances: Instances, order_api: httpx.Client, audit: Audit
) -> None:
    kill_listener(ORDER_SERVICE.app)  # the instance `dapr run` started; its sidecar stays up
    crashing = instances.app(
        "order-service-crashing", "order_service", "order-service", ORDER_SERVICE,
        ORDER_SERVICE_FAULT_CRASH_AFTER_COMMIT="true",
    )  # fmt: skip
    load = Load()
    body = load.new_body()
    key = f"crash-drill-{os.getpid()}-{crashing.pid}"

    first = load.post(order_api, body, key=key)  # the process dies mid-request: no answer
    assert first.status is None, first
    assert first.transport_error, first
    crashing.popen.wait(timeout=10)
    assert crashing.popen.returncode == 128 + signal.SIGKILL  # as `uv run` reports its child's SIGKILL

    instances.app("order-service-restarted", "order_service", "order-service", ORDER_SERVICE)
    restarted_at = datetime.now(UTC)
    replayed = load.post(order_api, body, key=key)

    assert replayed.status == 201
    assert replayed.replayed  # it was stored before the crash
    assert replayed.order_id is not None
    wait_for_status(order_api, replayed.order_id, "shipped", timeout=15)
    audit.check("order service SIGKILL after its commit", load, fault_ended_at=restarted_at)


@pytest.mark.timeout(480)
def test_progress_that_comes_while_the_order_service_is_down_is_folded_in_order_when_it_is_back(
    instances: Instances, order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    """The bulk subscription's batches fail whole while the app is down: none is lost or dead-lettered, and no
    order's events are folded out of order when the runtime's retries get through."""
    dead_letters_before = dead_letters.dead_letters()
    stream = OrderStream(interval=0.02)
    stream.start()
    eventually(lambda: len(stream.answers) >= BURST_ORDERS or None, timeout=30, what=f"{BURST_ORDERS} orders")
    answers = stream.stop()
    assert {answer.status for answer in answers} == {201}
    order_ids = [answer.order_id for answer in answers if answer.order_id is not None]

    kill_listener(ORDER_SERVICE.app)  # its sidecar stays up, holding what fulfillment publishes from now on
    eventually(
        lambda: sum(len(shipments(carrier_admin, order_id)) for order_id in order_ids) >= len(order_ids) // 2 or None,
        timeout=60,
        what="half the orders shipped while the order service is down",
    )
    instances.app("order-service-back", "order_service", "order-service", ORDER_SERVICE)
    back_at = datetime.now(UTC)

    for order_id in order_ids:
        order = wait_for_status(order_api, order_id, "delivered", timeout=90)
        assert [entry["status"] for entry in order["history"]] == ["pending", "processing", "shipped", "delivered"]
    assert [len(shipments(carrier_admin, order_id)) for order_id in order_ids] == [1] * len(order_ids)
    new_dead_letters = [letter for letter in dead_letters.dead_letters() if letter not in dead_letters_before]
    assert [letter for letter in new_dead_letters if letter.key is not None and letter.key.decode() in order_ids] == []
    audit.check("order service app down while progress comes", stream, fault_ended_at=back_at)
