"""Fulfillment down for longer than the inbound retry budget used to be (issue 11), under load: its sidecar stops
the subscription once its health checks fail (dapr.yaml), so Kafka keeps the events, nothing is dead-lettered, and
the backlog drains once the app is back. Orders cancelled while it is down stay cancelled and never ship. Audited
(tests/support/audit.py): every order answered 201 reaches a final status, nothing is lost, no dead letter.

The proof does not rest on the outage outlasting a budget: the retry budget is now unbounded
(components/resiliency.yaml), and what keeps a budget of any size from running out is that the sidecar makes no
delivery attempt at all while its app is unhealthy. So the drill asserts what shows that: the health checks trip
within seconds of the kill (daprd's log), the sidecar stops its subscription, its Kafka consumer group is left
without a member (nothing is delivered, nothing committed: the broker holds the events), and from then until the
app is back the sidecar makes not one call to it (daprd's own count of the HTTP calls it completed, on its metrics
port: a refused delivery counts as a 500). An outage past that point is the same at any length; `full` runs the
issue's 10 minutes all the same, twice the old five-minute budget, on the shipped configuration.

Sized by `ORDER_PLATFORM_DRILL_SIZE`: `ci` (the default: 90 s down at 20 orders/s) or `full` (10 min down at
30 orders/s: `make drills-full`).
"""

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka import KafkaException
from devstack import kafka
from devstack.layout import Layout

from tests.support.audit import Audit
from tests.support.instances import FULFILLMENT, Instances, kill_listener
from tests.support.load import OrderStream
from tests.support.polling import eventually

UNHEALTHY = "App entered un-healthy status"
HEALTHY = "App entered healthy status"
HEALTH_CHECKS_TRIP_WITHIN_SECONDS = 30.0
"""dapr.yaml: 3 failed probes 5 s apart (2 s timeout each), from the kill: about 15 s, with room."""
GROUP_EMPTY_WITHIN_SECONDS = 60.0
"""The stopped subscription's member stops heartbeating (sarama leaves a group only on Close) and the broker drops
it when its session times out."""
CANCEL_EVERY_SECONDS = 3.0
SIDECAR_METRICS = f"http://127.0.0.1:{FULFILLMENT.metrics}/metrics"


@dataclass(frozen=True)
class DrillSize:
    outage_seconds: int
    orders_per_second: int
    final_within_seconds: int


SIZES = {
    "ci": DrillSize(outage_seconds=90, orders_per_second=20, final_within_seconds=300),
    "full": DrillSize(outage_seconds=600, orders_per_second=30, final_within_seconds=900),
}
SIZE = SIZES[os.environ.get("ORDER_PLATFORM_DRILL_SIZE", "ci")]


@dataclass(frozen=True)
class SidecarLog:
    """The log `dapr run -f` writes for the fulfillment sidecar (in the app's folder, .dapr/logs)."""

    path: Path

    @classmethod
    def of_fulfillment(cls, layout: Layout) -> "SidecarLog":
        logs = sorted((layout.root / "fulfillment-service" / ".dapr" / "logs").glob("fulfillment-service_daprd_*.log"))
        assert logs, "no log of the fulfillment sidecar: is it the one `dapr run -f dapr.yaml` started?"
        return cls(logs[-1])

    def count(self, text: str) -> int:
        return self.path.read_text(errors="replace").count(text)


def _cancel_one_pending(api: httpx.Client, stream: OrderStream, cancelled: set[str]) -> None:
    """Cancel the newest order accepted and not cancelled yet: pending, since fulfillment is down."""
    accepted = [answer.order_id for answer in list(stream.answers) if answer.order_id is not None]
    candidates = [order_id for order_id in reversed(accepted) if order_id not in cancelled]
    if not candidates:
        return
    response = api.post(f"/orders/{candidates[0]}/cancel", json={"reason": "drill: cancelled while fulfillment down"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    cancelled.add(candidates[0])


def _members() -> set[str] | None:
    """The fulfillment-service consumer group's members; None when the broker did not say in time (asked again)."""
    try:
        return kafka.consumer_group_members(("fulfillment-service",))["fulfillment-service"]
    except KafkaException:
        return None


def _sidecar_posts() -> int:
    """POSTs the fulfillment sidecar has made (completed, whatever the answer): deliveries to its app, and carrier
    calls for the app's worker, which is down with it."""
    text = httpx.get(SIDECAR_METRICS, timeout=5).text
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
               if line.startswith("dapr_http_client_completed_count{") and 'method="POST"' in line)  # fmt: skip


def _readiness(port: int) -> dict[str, object]:
    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    body: dict[str, object] = response.json()
    return body


@pytest.mark.timeout(SIZE.outage_seconds + SIZE.final_within_seconds + 600)
def test_fulfillment_down_past_the_old_retry_budget_dead_letters_nothing_and_its_backlog_drains_once_it_is_back(
    audit: Audit, instances: Instances, layout: Layout, order_api: httpx.Client
) -> None:
    log = SidecarLog.of_fulfillment(layout)
    unhealthy_before, healthy_before = log.count(UNHEALTHY), log.count(HEALTHY)
    stream = OrderStream(interval=1 / SIZE.orders_per_second, timeout=10)
    stream.start()
    try:
        eventually(lambda: len(stream.answers) >= 2 * SIZE.orders_per_second, timeout=30,
                   what="orders flowing before the outage")  # fmt: skip

        kill_listener(FULFILLMENT.app)  # SIGKILL: its sidecar stays up, its deliveries are refused
        killed = time.monotonic()
        eventually(lambda: log.count(UNHEALTHY) > unhealthy_before, timeout=HEALTH_CHECKS_TRIP_WITHIN_SECONDS,
                   interval=0.5, what="the fulfillment sidecar to find its app unhealthy")  # fmt: skip
        tripped_after = time.monotonic() - killed
        eventually(lambda: _members() == set(), timeout=GROUP_EMPTY_WITHIN_SECONDS, interval=1,
                   what="the fulfillment-service consumer group to be left without a member")  # fmt: skip
        emptied_after = time.monotonic() - killed
        posts_when_stopped = _sidecar_posts()

        cancelled: set[str] = set()
        while time.monotonic() - killed < SIZE.outage_seconds:
            _cancel_one_pending(order_api, stream, cancelled)
            time.sleep(CANCEL_EVERY_SECONDS)  # pacing the cancels, not waiting for a condition
        members_at_the_end = _members()  # None if the broker does not say in time: the calls below are the proof
        posted_while_down = _sidecar_posts() - posts_when_stopped
        assert log.count(HEALTHY) == healthy_before, "the sidecar found its dead app healthy"
        assert _readiness(8000)["dead_letters"] == 0, "the order service reports dead letters"

        instances.fulfillment("fulfillment-service-back")
        back_at = datetime.now(UTC)
        back = time.monotonic()
        eventually(lambda: log.count(HEALTHY) > healthy_before, timeout=30, interval=0.5,
                   what="the fulfillment sidecar to find its app healthy again")  # fmt: skip
        eventually(lambda: time.monotonic() - back >= 10 or None, timeout=15, interval=0.5,
                   what="10 s more of orders after the outage")  # fmt: skip
    finally:
        stream.stop()

    outage = f"{SIZE.outage_seconds} s at {SIZE.orders_per_second}/s"
    at_the_end = "unknown" if members_at_the_end is None else sorted(members_at_the_end) or "none"
    notes = (
        f"health checks tripped {tripped_after:.1f} s after the kill, consumer group empty after {emptied_after:.1f} s "
        f"(members at the end of the outage: {at_the_end}), {posted_while_down} calls to the app after that; "
        f"{len(cancelled)} orders cancelled while down"
    )
    print(f"\n[fulfillment down {outage}] {notes}")
    # What keeps any retry budget from running out: nothing was delivered, or even tried, while the app was down.
    assert not members_at_the_end, f"a member consumed order-events while the app was down: {members_at_the_end}"
    assert posted_while_down == 0, f"the sidecar called its unhealthy app {posted_while_down} times"
    audit.check(f"fulfillment down {outage}", stream, fault_ended_at=back_at, final_within=SIZE.final_within_seconds,
                notes=notes)  # fmt: skip
    # Draining the backlog kept the app busy, never so busy that its probes failed and stopped its subscription.
    assert log.count(UNHEALTHY) == unhealthy_before + 1, "the app was found unhealthy again while it drained"
    orders = {order_id: order_api.get(f"/orders/{order_id}").json() for order_id in sorted(cancelled)}
    assert {order["status"] for order in orders.values()} <= {"cancelled"}, orders
    for port in (8000, FULFILLMENT.app):
        readiness = _readiness(port)
        assert readiness["dead_letters"] == 0, readiness
