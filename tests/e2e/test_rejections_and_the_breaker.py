"""Permanent rejections (422) are the carrier's answer about one address, not a sign that it is down: a stream in
which 30% of the addresses are rejected fails those orders and ships the rest, and the circuit breaker stays closed
(components/resiliency.yaml explains its threshold)."""

import httpx

from tests.support.fulfillment import carrier_calls, created, rejected_order
from tests.support.orders import wait_for_status


def test_with_30_percent_of_addresses_rejected_the_rest_ship_and_the_breaker_stays_closed(
    order_api: httpx.Client, carrier_admin: httpx.Client
) -> None:
    orders = [(created(order_api, rejected_order()), "failed") if index % 10 < 3 else (created(order_api), "shipped")
              for index in range(40)]  # fmt: skip

    ended = {order_id: wait_for_status(order_api, order_id, status, timeout=30) for order_id, status in orders}

    for order_id, status in orders:
        calls = carrier_calls(carrier_admin, order_id)
        # One call each: no order was parked, so no call was refused by an open breaker.
        assert [call["outcome"] for call in calls] == [422 if status == "failed" else 201], order_id
        assert ended[order_id]["fulfillment"]["attempts"] == 1
