"""Backlogs drain: the broker paused while orders arrive, the carrier down while they arrive. Every
accepted order ships exactly once afterwards, fulfillment keeps picking orders up within 5 s while the carrier is
down, and nothing the backlog grows breaks a read (the relay and the work index read their state a page at a time).

Sized by `ORDER_PLATFORM_DRILL_SIZE`: `ci` (the default: a 30 s pause at 50/s, a 60 s outage at 25/s; before the
shipping worker held orders while the carrier is down, 25/s was enough for the parked orders' retries to starve
pickups) or `full` (a 5 min pause at 100/s and a 10 min outage at 50/s: `make drills-full`).
"""

import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from devstack.layout import Layout
from devstack.stack import Stack
from fulfillment_service.config import Settings

from tests.support.audit import Audit
from tests.support.load import OrderStream
from tests.support.polling import eventually
from tests.support.state import largest_stored_value

PICKUP_WITHIN_SECONDS = 5.0
LARGEST_DOCUMENT_BYTES = 16 * 1024
"""No stored document grows with the backlog: an index page of the outbox or the work index (at most 128 entries)
and an order with its history stay far below this; a shard listing every parked order of its share did not (a
10-minute carrier outage at 50/s left 940 orders, 64 KB, in each)."""
FULFILLMENT_DEFAULTS = Settings.model_construct()
"""The fulfillment service's settings as the stack runs it (dapr.yaml sets none of those read here)."""


@dataclass(frozen=True)
class DrillSize:
    broker_pause_seconds: int
    orders_per_second_while_paused: int
    carrier_outage_seconds: int
    orders_per_second_while_down: int


SIZES = {
    "ci": DrillSize(broker_pause_seconds=30, orders_per_second_while_paused=50, carrier_outage_seconds=60,
                    orders_per_second_while_down=25),
    "full": DrillSize(broker_pause_seconds=300, orders_per_second_while_paused=100, carrier_outage_seconds=600,
                      orders_per_second_while_down=50),
}  # fmt: skip
SIZE = SIZES[os.environ.get("ORDER_PLATFORM_DRILL_SIZE", "ci")]


def _stream_for(seconds: float, per_second: int) -> tuple[OrderStream, list[str]]:
    """Orders at a fixed rate for `seconds`: the load (for the audit) and the ids of the accepted ones (every create
    must be a fast 201)."""
    stream = OrderStream(interval=1 / per_second, timeout=10)
    stream.start()
    started = time.monotonic()
    eventually(lambda: time.monotonic() - started >= seconds or None, timeout=seconds + 5, interval=1,
               what=f"{seconds} s of orders")  # fmt: skip
    answers = stream.stop()
    statuses = Counter(answer.status for answer in answers)
    assert statuses == {201: len(answers)}, statuses
    return stream, [answer.order_id for answer in answers if answer.order_id is not None]


def _final_within(orders: int) -> float:
    """How long the audit waits for a backlog's orders to be final: generous, and longer for a full-size one."""
    return 240 + orders / 20


def _shipments_per_order(carrier_admin: httpx.Client) -> Counter[str]:
    return Counter(shipment["order_id"] for shipment in carrier_admin.get("/admin/shipments").json())


def _orders_shipped(carrier_admin: httpx.Client) -> int:
    """Distinct orders the carrier holds a shipment for: a cheap count (the whole list of tens of thousands,
    fetched every second, cost the carrier mock a quarter of its busy time)."""
    orders: int = carrier_admin.get("/admin/shipments/count").json()["orders"]
    return orders


def _seconds_until_all_shipped(carrier_admin: httpx.Client, order_ids: list[str], *, orders_before: int,
                               within: float) -> float | None:  # fmt: skip
    """Seconds until every order had a shipment at the carrier; None if not within `within`. The whole list is
    fetched only once the count says they may all be there."""
    started = time.monotonic()
    wanted = set(order_ids)
    try:
        eventually(lambda: _orders_shipped(carrier_admin) - orders_before >= len(wanted)
                   and wanted <= set(_shipments_per_order(carrier_admin)),
                   timeout=within, interval=1, what=f"all {len(order_ids)} orders shipped")  # fmt: skip
    except AssertionError:
        return None
    return time.monotonic() - started


def _drain_told(drained: float | None, shipped: int, *, within: float, since: str) -> str:
    if drained is not None:
        return f"every one shipped {drained:.1f} s after {since}"
    return f"only {shipped} shipped in the {within:.0f} s after {since}"


def _no_document_grew(layout: Layout) -> None:
    key, size = largest_stored_value(layout)
    assert size <= LARGEST_DOCUMENT_BYTES, f"{key} holds {size} bytes at the height of the backlog"


def _each_shipped_once(carrier_admin: httpx.Client, order_ids: list[str]) -> None:
    shipped = _shipments_per_order(carrier_admin)
    assert [order_id for order_id in order_ids if shipped[order_id] > 1] == [], "an order shipped twice"
    unshipped = [order_id for order_id in order_ids if shipped[order_id] == 0]
    assert unshipped == [], f"{len(unshipped)} of {len(order_ids)} orders not shipped"


@pytest.mark.timeout(
    SIZE.broker_pause_seconds + 600 + _final_within(SIZE.broker_pause_seconds * SIZE.orders_per_second_while_paused)
)
def test_a_broker_paused_while_orders_arrive_drains_every_order_once_it_is_back(
    stack: Stack, carrier_admin: httpx.Client, layout: Layout, audit: Audit
) -> None:
    orders_before = _orders_shipped(carrier_admin)
    broker = stack.process("kafka")
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        stream, order_ids = _stream_for(SIZE.broker_pause_seconds, per_second=SIZE.orders_per_second_while_paused)
        readiness = httpx.get("http://127.0.0.1:8000/readyz", timeout=5).json()
        assert readiness["ready"], readiness
        assert readiness["status"] == "degraded", readiness
        assert "not being published" in readiness["degraded_reason"]
        _no_document_grew(layout)
    finally:
        os.kill(broker.pid, signal.SIGCONT)
        resumed_at = datetime.now(UTC)

    drained = _seconds_until_all_shipped(carrier_admin, order_ids, orders_before=orders_before, within=180)
    rate = SIZE.orders_per_second_while_paused
    print(
        f"\n[broker paused {SIZE.broker_pause_seconds} s at {rate}/s] {len(order_ids)} orders, all 201; "
        + _drain_told(drained, _orders_shipped(carrier_admin) - orders_before, within=180, since="the broker was back")
    )
    _each_shipped_once(carrier_admin, order_ids)
    eventually(lambda: httpx.get("http://127.0.0.1:8000/readyz", timeout=5).json()["status"] == "ok", timeout=30,
               what="readiness ok again")  # fmt: skip
    audit.check(f"backlog: broker paused {SIZE.broker_pause_seconds} s at {rate}/s", stream, fault_ended_at=resumed_at,
                final_within=_final_within(len(order_ids)),
                notes=_drain_told(drained, len(order_ids), within=180, since="the broker was back"))  # fmt: skip


@pytest.mark.timeout(
    SIZE.carrier_outage_seconds + 900 + _final_within(SIZE.carrier_outage_seconds * SIZE.orders_per_second_while_down)
)
def test_a_carrier_down_while_orders_arrive_keeps_pickup_fast_and_ships_every_order_once_after(
    order_api: httpx.Client, carrier_admin: httpx.Client, layout: Layout, audit: Audit
) -> None:
    orders_before = _orders_shipped(carrier_admin)
    carrier_admin.put("/admin/faults", json={"down": True}).raise_for_status()
    try:
        stream, order_ids = _stream_for(SIZE.carrier_outage_seconds, per_second=SIZE.orders_per_second_while_down)
        _no_document_grew(layout)
    finally:
        carrier_admin.delete("/admin/faults").raise_for_status()
        carrier_back_at = datetime.now(UTC)

    drained = _seconds_until_all_shipped(carrier_admin, order_ids, orders_before=orders_before, within=300)
    shipped = _orders_shipped(carrier_admin) - orders_before
    orders = [order_api.get(f"/orders/{order_id}").json() for order_id in order_ids]
    pickups = sorted(
        (datetime.fromisoformat(order["fulfillment"]["picked_up_at"]) - datetime.fromisoformat(order["created_at"]))
        .total_seconds()
        for order in orders
        if order["fulfillment"] is not None
    )  # fmt: skip
    unknown_to_fulfillment = len(orders) - len(pickups)
    failed_attempts = sum(  # every attempt but the one that shipped (if the order says so yet)
        order["fulfillment"]["attempts"] - (order["status"] in ("shipped", "delivered"))
        for order in orders
        if order["fulfillment"] is not None
    )
    pickup_p95 = pickups[int(len(pickups) * 0.95)] if pickups else float("inf")
    rate = SIZE.orders_per_second_while_down
    print(
        f"\n[carrier down {SIZE.carrier_outage_seconds} s at {rate}/s] {len(order_ids)} orders, pickup p95 "
        f"{1000 * pickup_p95:.0f} ms, max {1000 * pickups[-1] if pickups else float('inf'):.0f} ms, "
        f"{unknown_to_fulfillment} not picked up at the end, {failed_attempts} failed attempts; "
        + _drain_told(drained, shipped, within=300, since="the carrier was back")
    )
    _each_shipped_once(carrier_admin, order_ids)
    assert unknown_to_fulfillment == 0, f"{unknown_to_fulfillment} orders never picked up"
    assert pickup_p95 < PICKUP_WITHIN_SECONDS, f"pickup p95 {pickup_p95:.2f} s during the outage"
    # Held while the carrier is down: one probe per interval, besides the calls in flight when it went down. Retried
    # each at its own pace, every order would fail at least once.
    probes = SIZE.carrier_outage_seconds / FULFILLMENT_DEFAULTS.carrier_probe_seconds
    assert failed_attempts <= probes + FULFILLMENT_DEFAULTS.max_concurrent_carrier_calls, failed_attempts
    audit.check(f"backlog: carrier down {SIZE.carrier_outage_seconds} s at {rate}/s", stream,
                fault_ended_at=carrier_back_at, final_within=_final_within(len(order_ids)),
                notes=f"pickup p95 {1000 * pickup_p95:.0f} ms, {failed_attempts} failed attempts; "
                + _drain_told(drained, shipped, within=300, since="the carrier was back"))  # fmt: skip
