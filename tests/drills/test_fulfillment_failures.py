"""Fulfillment under failure, on the real stack: a long carrier outage (the breaker opens, orders are parked and
ship once it is over), an outage longer than the give-up window, and fulfillment instances killed mid-burst, alone
or beside a second replica. Every order ships exactly once, or fails with the reason."""

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from devstack import dead_letters, kafka
from devstack.layout import Layout

from tests.support.audit import Audit
from tests.support.fulfillment import carrier_calls, shipments
from tests.support.instances import FULFILLMENT, FULFILLMENT_REPLICA, Instances, kill_listener, sigkill
from tests.support.load import Load, OrderStream
from tests.support.orders import wait_for_status
from tests.support.polling import eventually

PICKUP_WITHIN_SECONDS = 5.0


def _accepted(stream: OrderStream) -> list[str]:
    answers = stream.stop()
    assert {answer.status for answer in answers} == {201}, [answer for answer in answers if answer.status != 201]
    return [answer.order_id for answer in answers if answer.order_id is not None]


def _all_ship_exactly_once(
    order_api: httpx.Client, carrier_admin: httpx.Client, order_ids: list[str], timeout: float
) -> list[dict[str, Any]]:
    shipped = [wait_for_status(order_api, order_id, "shipped", timeout=timeout) for order_id in order_ids]
    assert [len(shipments(carrier_admin, order_id)) for order_id in order_ids] == [1] * len(order_ids)
    return shipped


def _pickup_seconds(order: dict[str, Any]) -> float:
    picked_up_at = datetime.fromisoformat(order["fulfillment"]["picked_up_at"])
    return (picked_up_at - datetime.fromisoformat(order["created_at"])).total_seconds()


@pytest.mark.timeout(540)
def test_a_60_s_carrier_outage_opens_the_breaker_parks_orders_and_all_ship_once_after_it(
    order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    outage_started = time.monotonic()
    stream = OrderStream(interval=0.5)
    stream.start()

    def breaker_refused_an_attempt() -> bool:
        orders = [order_api.get(f"/orders/{answer.order_id}").json() for answer in list(stream.answers)]
        return any("circuit breaker" in ((order["fulfillment"] or {}).get("last_error") or "") for order in orders)

    eventually(breaker_refused_an_attempt, timeout=45, interval=1, what="an attempt refused by the open breaker")
    opened = datetime.now().astimezone()
    eventually(lambda: time.monotonic() - outage_started >= 60 or None, timeout=65, interval=1, what="60 s of outage")
    carrier_admin.delete("/admin/faults").raise_for_status()
    recovered = datetime.now().astimezone()
    order_ids = _accepted(stream)

    # While the breaker was open (it half-opens 30 s after opening), no call reached the carrier.
    arrivals = [datetime.fromisoformat(call["arrived_at"]) for order_id in order_ids
                for call in carrier_calls(carrier_admin, order_id)]  # fmt: skip
    assert not [at for at in arrivals if opened < at < opened + timedelta(seconds=20)]
    shipped = _all_ship_exactly_once(order_api, carrier_admin, order_ids, timeout=240)
    assert max(_pickup_seconds(order) for order in shipped) < PICKUP_WITHIN_SECONDS
    after_recovery = [(datetime.fromisoformat(order["fulfillment"]["shipped_at"]) - recovered).total_seconds()
                      for order in shipped]  # fmt: skip
    print(  # the numbers for the note
        f"\n[outage] {len(order_ids)} orders, carrier calls {len(arrivals)}, attempts per order max "
        f"{max(order['fulfillment']['attempts'] for order in shipped)}, last shipped {max(after_recovery):.1f} s "
        f"after recovery"
    )
    audit.check("carrier down 60 s (breaker open)", stream, fault_ended_at=recovered,
                notes=f"last shipped {max(after_recovery):.1f} s after the carrier was back")  # fmt: skip


def test_an_outage_longer_than_the_give_up_window_fails_the_orders_with_the_reason(
    instances: Instances, order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    kill_listener(FULFILLMENT.app)
    instances.fulfillment("fulfillment-short-give-up", FULFILLMENT_SERVICE_GIVE_UP_AFTER_SECONDS="15")
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    load = Load()

    order_ids = [load.created(order_api) for _ in range(3)]

    failed = [wait_for_status(order_api, order_id, "failed", timeout=90) for order_id in order_ids]
    assert {order["fulfillment"]["failure_reason"] for order in failed} == {"carrier unavailable"}
    assert all(order["fulfillment"]["attempts"] >= 2 for order in failed)
    assert [shipments(carrier_admin, order_id) for order_id in order_ids] == [[], [], []]
    audit.check("carrier down past the give-up window", load, fault_ended_at=None)


def _refused_deliveries(layout: Layout) -> int:
    """Deliveries the fulfillment sidecar (started by `dapr run -f`, logging into the app's .dapr/logs) could not
    make and is retrying: with nothing listening on the app port, every batch handed to the app fails, and the
    inbound resiliency policy logs each retry (a bulk delivery's log line does not say why it failed)."""
    logs = sorted((layout.root / "fulfillment-service" / ".dapr" / "logs").glob("fulfillment-service_daprd_*.log"))
    return (
        logs[-1].read_text(errors="replace").count("Error processing operation component[order-pubsub] input")
        if logs
        else 0
    )


def test_an_order_created_while_fulfillment_is_down_ships_when_it_is_back_and_is_not_dead_lettered(
    instances: Instances, layout: Layout, order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    kill_listener(FULFILLMENT.app)  # its sidecar stays up and cannot deliver: connection refused
    refused_before = _refused_deliveries(layout)
    dead_letters_before = dead_letters.dead_letters()
    load = Load()
    order_id = load.created(order_api)
    eventually(
        lambda: _refused_deliveries(layout) > refused_before,
        timeout=10,
        what="the fulfillment sidecar to fail a delivery to the stopped app",
    )

    instances.fulfillment("fulfillment-service-back")
    back_at = datetime.now(UTC)

    wait_for_status(order_api, order_id, "shipped", timeout=30)
    assert len(shipments(carrier_admin, order_id)) == 1
    new_dead_letters = [letter for letter in dead_letters.dead_letters() if letter not in dead_letters_before]
    assert [letter for letter in new_dead_letters if letter.key == order_id.encode()] == []
    audit.check("fulfillment app down, one order", load, fault_ended_at=back_at)


@pytest.mark.timeout(540)
def test_fulfillment_killed_mid_burst_and_restarted_ships_every_order_exactly_once(
    instances: Instances, order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    carrier_admin.put("/admin/faults", json={"latency_ms": 500}).raise_for_status()  # many calls in flight
    stream = OrderStream(interval=0.05)
    stream.start()
    eventually(lambda: len(stream.answers) >= 40 or None, timeout=30, what="40 orders into the burst")

    kill_listener(FULFILLMENT.app)  # SIGKILL: leases held, calls in flight, deliveries unanswered
    instances.fulfillment("fulfillment-service-restarted")
    restarted_at = datetime.now(UTC)
    eventually(lambda: len(stream.answers) >= 80 or None, timeout=30, what="40 more orders")
    order_ids = _accepted(stream)

    _all_ship_exactly_once(order_api, carrier_admin, order_ids, timeout=180)
    audit.check("fulfillment app SIGKILL mid-burst", stream, fault_ended_at=restarted_at)


@pytest.mark.timeout(540)
def test_two_replicas_share_the_work_and_one_killed_mid_burst_still_ships_every_order_exactly_once(
    instances: Instances, order_api: httpx.Client, carrier_admin: httpx.Client, audit: Audit
) -> None:
    lease = "60"  # a survivor takes a dead replica's leased work over sooner than with the default
    kill_listener(FULFILLMENT.app)
    instances.fulfillment("fulfillment-replica-a", FULFILLMENT_SERVICE_LEASE_SECONDS=lease)
    instances.sidecar("fulfillment-replica-b-dapr", "fulfillment-service", FULFILLMENT_REPLICA, "fulfillment-service")
    replica_b = instances.fulfillment(
        "fulfillment-replica-b", FULFILLMENT_REPLICA, FULFILLMENT_SERVICE_LEASE_SECONDS=lease
    )
    eventually(
        lambda: len(kafka.consumer_group_members(("fulfillment-service",))["fulfillment-service"]) == 2 or None,
        timeout=60,
        what="both sidecars in the fulfillment-service consumer group",
    )
    carrier_admin.put("/admin/faults", json={"latency_ms": 500}).raise_for_status()
    stream = OrderStream(interval=0.05)
    stream.start()
    eventually(lambda: len(stream.answers) >= 40 or None, timeout=30, what="40 orders into the burst")

    sigkill(replica_b)
    kill_listener(FULFILLMENT_REPLICA.dapr_http)  # the whole replica: app and sidecar
    killed_at = datetime.now(UTC)  # nothing brings it back: the survivor has to recover on its own
    eventually(lambda: len(stream.answers) >= 80 or None, timeout=30, what="40 more orders")
    order_ids = _accepted(stream)

    _all_ship_exactly_once(order_api, carrier_admin, order_ids, timeout=240)
    audit.check("fulfillment replica killed (app + sidecar) of two", stream, fault_ended_at=killed_at)
