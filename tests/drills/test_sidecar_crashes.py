"""A sidecar dies (SIGKILL) under load and is started again, as `dapr run -f` had it; its app stays up.

- The order service's sidecar: while it is gone the service cannot store anything, so creates are refused (never
  accepted and then lost), fulfillment's progress waits on Kafka, and the relay cannot publish. Once a new sidecar
  is up, creates are accepted again, and every accepted order is published, ships once and is folded to its end.
- The fulfillment service's sidecar, with carrier calls in flight through it (the carrier answers after 300 ms):
  pickups, carrier calls and publishes fail while it is gone; a call whose answer was lost is made again with the
  same idempotency key, so no order gets a second live shipment, and every order ships once the sidecar is back.

The sidecar's process is found by the port it listens on (tests/support/instances.py, `kill_listener`). Its new
consumer-group member takes the partitions only once Kafka has given up on the killed one (its session timeout):
the time to recover includes that.
"""

from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from devstack.processes import ManagedProcess
from devstack.stack import Stack

from tests.support.audit import Audit
from tests.support.instances import FULFILLMENT, ORDER_SERVICE, Instances, Ports, kill_listener
from tests.support.load import OrderStream
from tests.support.polling import eventually

ORDERS_PER_SECOND = 10
ORDERS_BEFORE = 30
ORDERS_WHILE_DOWN = 30
ORDERS_AFTER = 30


def _restart_sidecar(stack: Stack, instances: Instances, app_id: str, ports: Ports) -> ManagedProcess:
    """A new sidecar for `app_id` where `dapr run` had its own, kept running with the stack (stopped with it), so
    the drills after this one find a whole system without a second restart."""
    sidecar = instances.sidecar(f"{app_id}-dapr-after-sigkill", app_id, ports, app_id)
    instances.started.remove(sidecar)
    stack.processes.append(sidecar)
    return sidecar


def _accepted_after(stream: OrderStream, moment: datetime) -> int:
    return sum(answer.status == 201 and answer.sent_at >= moment for answer in list(stream.answers))


def _sidecar_killed_under_load(
    stack: Stack, instances: Instances, audit: Audit, *, name: str, app_id: str, ports: Ports
) -> tuple[OrderStream, Counter[int | None]]:
    stream = OrderStream(interval=1 / ORDERS_PER_SECOND, timeout=10)
    stream.start()
    try:
        eventually(lambda: len(stream.answers) >= ORDERS_BEFORE, timeout=30, what="orders flowing before the kill")
        kill_listener(ports.dapr_http)  # SIGKILL, the way a crash or the OOM killer ends it
        killed_at = datetime.now(UTC)
        sent = len(stream.answers)
        eventually(lambda: len(stream.answers) >= sent + ORDERS_WHILE_DOWN, timeout=60, what="orders while it is down")
        _restart_sidecar(stack, instances, app_id, ports)
        restarted_at = datetime.now(UTC)
        eventually(lambda: _accepted_after(stream, restarted_at) >= ORDERS_AFTER, timeout=60,
                   what="orders accepted again after the restart")  # fmt: skip
    finally:
        answers = stream.stop()
    while_down = Counter(answer.status for answer in answers if killed_at <= answer.sent_at < restarted_at)
    print(f"\n[{name}] answers while the sidecar was down: {dict(while_down)}")
    audit.check(name, stream, fault_ended_at=restarted_at, notes=f"answers while the sidecar was down: "
                f"{dict(while_down)}")  # fmt: skip
    return stream, while_down


@pytest.mark.timeout(480)
def test_the_order_service_sidecar_killed_under_load_loses_nothing_and_refuses_what_it_cannot_store(
    stack: Stack, instances: Instances, carrier_admin: httpx.Client, audit: Audit
) -> None:
    stream, while_down = _sidecar_killed_under_load(
        stack, instances, audit, name="order-service sidecar SIGKILL", app_id="order-service", ports=ORDER_SERVICE
    )

    assert 201 not in while_down, f"an order accepted while the service could not store it: {while_down}"
    assert set(while_down) <= {500, 503}, f"what a create is answered while the sidecar is gone: {while_down}"
    slowest = max(answer.seconds for answer in stream.answers)
    assert slowest < stream.timeout, f"a create took {slowest:.1f} s"


@pytest.mark.timeout(480)
def test_the_fulfillment_sidecar_killed_with_carrier_calls_in_flight_ships_every_order_once(
    stack: Stack, instances: Instances, carrier_admin: httpx.Client, audit: Audit
) -> None:
    carrier_admin.put("/admin/faults", json={"latency_ms": 300}).raise_for_status()  # calls in flight at the kill
    _, while_down = _sidecar_killed_under_load(
        stack, instances, audit, name="fulfillment sidecar SIGKILL", app_id="fulfillment-service", ports=FULFILLMENT
    )

    assert set(while_down) == {201}, f"the order service's creates do not depend on fulfillment: {while_down}"
