"""Fault injection: down, error_rate, reject_rate, timeout_rate, latency_ms, the admin API that sets them."""

from __future__ import annotations

import time
from typing import Any

import anyio
import httpx
import pytest
from shipping_mock_testkit import (
    StartCarrier,
    assert_problem,
    create_shipment,
    new_key,
    new_order_id,
    requests_of,
    set_faults,
    shipment_body,
    shipments_of,
    wait_until,
)

pytestmark = pytest.mark.anyio

NO_FAULTS = {"latency_ms": 0, "error_rate": 0.0, "timeout_rate": 0.0, "reject_rate": 0.0, "down": False}


async def test_fault_settings_are_replaced_read_and_reset(carrier: httpx.AsyncClient) -> None:
    assert (await carrier.get("/admin/faults")).json() == NO_FAULTS

    replaced = await carrier.put("/admin/faults", json={"error_rate": 0.25, "down": True})
    assert replaced.status_code == 200
    assert replaced.json() == {**NO_FAULTS, "error_rate": 0.25, "down": True}
    assert (await carrier.get("/admin/faults")).json() == replaced.json()

    # A PUT replaces everything: what it omits goes back to the default.
    assert (await carrier.put("/admin/faults", json={"latency_ms": 10})).json() == {**NO_FAULTS, "latency_ms": 10}

    reset = await carrier.delete("/admin/faults")
    assert reset.status_code == 200
    assert reset.json() == NO_FAULTS
    assert (await carrier.get("/admin/faults")).json() == NO_FAULTS


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 1.5},
        {"timeout_rate": -0.1},
        {"reject_rate": 2},
        {"latency_ms": -1},
        {"down": "sometimes"},
        {"eror_rate": 0.5},
    ],
)
async def test_out_of_range_fault_settings_are_refused(carrier: httpx.AsyncClient, faults: dict[str, Any]) -> None:
    await set_faults(carrier, latency_ms=5)

    problem = assert_problem(await carrier.put("/admin/faults", json=faults), 422, "invalid-request")

    assert problem["errors"]
    assert (await carrier.get("/admin/faults")).json() == {**NO_FAULTS, "latency_ms": 5}


async def test_down_answers_503_to_every_carrier_call_but_not_to_admin(carrier: httpx.AsyncClient) -> None:
    order_id = new_order_id()
    existing = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()
    await set_faults(carrier, down=True)

    create = await create_shipment(carrier, shipment_body(order_id), new_key())
    read = await carrier.get(f"/shipments/{existing['shipment_id']}")
    find = await carrier.get("/shipments", params={"order_id": order_id})
    cancel = await carrier.post(f"/shipments/{existing['shipment_id']}/cancel")

    for response in (create, read, find, cancel):
        assert_problem(response, 503, "carrier-unavailable")
        assert response.headers["Retry-After"] == "1"
    assert (await carrier.get("/healthz")).status_code == 200
    [stored] = await shipments_of(carrier, order_id)
    assert stored["shipment_id"] == existing["shipment_id"]
    assert stored["status"] == "label_created"
    assert [call["outcome"] for call in await requests_of(carrier, order_id)] == [201, 503, 503]


async def test_error_rate_one_answers_503_before_storing_anything(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    existing = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()
    await set_faults(carrier, error_rate=1.0)

    create = await create_shipment(carrier, shipment_body(order_id), key)
    cancel = await carrier.post(f"/shipments/{existing['shipment_id']}/cancel")

    assert_problem(create, 503, "temporary-failure")
    assert_problem(cancel, 503, "temporary-failure")
    assert [s["status"] for s in await shipments_of(carrier, order_id)] == ["label_created"]

    # Nothing was remembered for the key either: once the carrier recovers, the key creates.
    await carrier.delete("/admin/faults")
    retried = await create_shipment(carrier, shipment_body(order_id), key)
    assert retried.status_code == 201
    assert len(await shipments_of(carrier, order_id)) == 2


async def test_reject_rate_rejection_is_remembered_for_the_key(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    await set_faults(carrier, reject_rate=1.0)

    rejected = await create_shipment(carrier, shipment_body(order_id), key)

    problem = assert_problem(rejected, 422, "address-rejected")
    assert problem["reason"] == "address_not_serviceable"

    await carrier.delete("/admin/faults")
    again = await create_shipment(carrier, shipment_body(order_id), key)
    assert again.status_code == 422
    assert again.json() == problem
    assert await shipments_of(carrier, order_id) == []

    other_key = await create_shipment(carrier, shipment_body(order_id), new_key())
    assert other_key.status_code == 201


async def test_find_by_order_ignores_error_reject_and_timeout_faults(start_carrier: StartCarrier) -> None:
    carrier = await start_carrier(hold_seconds=30)
    order_id = new_order_id()
    created = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()
    await set_faults(carrier, error_rate=1.0, reject_rate=1.0, timeout_rate=1.0)

    with anyio.fail_after(5):  # far under hold_seconds: the answer is not withheld
        find = await carrier.get("/shipments", params={"order_id": order_id})

    assert find.status_code == 200
    assert find.json() == [created]
    assert [call["outcome"] for call in await requests_of(carrier, order_id)] == [201]


async def test_timeout_stores_the_shipment_then_holds_the_answer(carrier: httpx.AsyncClient) -> None:
    order_id, key = new_order_id(), new_key()
    await set_faults(carrier, timeout_rate=1.0)  # hold_seconds is 0.2 in the test settings

    started = time.monotonic()
    response = await create_shipment(carrier, shipment_body(order_id), key)
    elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert elapsed >= 0.2
    [stored] = await shipments_of(carrier, order_id)
    assert stored["shipment_id"] == response.json()["shipment_id"]
    [call] = await requests_of(carrier, order_id)
    assert call["outcome"] == 201
    assert call["held_ms"] >= 199  # (timer granularity)


async def test_timeout_leaves_the_shipment_behind_when_the_caller_gives_up(start_carrier: StartCarrier) -> None:
    carrier = await start_carrier(hold_seconds=30)
    order_id, key = new_order_id(), new_key()
    await set_faults(carrier, timeout_rate=1.0)

    async def stored() -> bool:
        return len(await shipments_of(carrier, order_id)) == 1

    async with anyio.create_task_group() as group:
        group.start_soon(create_shipment, carrier, shipment_body(order_id), key)
        await wait_until(stored)
        group.cancel_scope.cancel()  # the caller's own timeout: it never hears the answer

    [call] = await requests_of(carrier, order_id)
    assert call["outcome"] == "abandoned"
    assert call["finished_at"] is not None
    assert call["held_ms"] < 30_000

    # The caller retries with the same key once the carrier behaves: the shipment it did not hear about.
    await carrier.delete("/admin/faults")
    retried = await create_shipment(carrier, shipment_body(order_id), key)
    assert retried.status_code == 200
    [shipment] = await shipments_of(carrier, order_id)
    assert retried.json()["shipment_id"] == shipment["shipment_id"]
    assert [c["outcome"] for c in await requests_of(carrier, order_id)] == ["abandoned", 200]


async def test_timeout_on_cancel_voids_before_withholding_the_answer(start_carrier: StartCarrier) -> None:
    carrier = await start_carrier(hold_seconds=30)
    order_id = new_order_id()
    shipment_id = (await create_shipment(carrier, shipment_body(order_id), new_key())).json()["shipment_id"]
    await set_faults(carrier, timeout_rate=1.0)

    async def voided() -> bool:
        return [s["status"] for s in await shipments_of(carrier, order_id)] == ["voided"]

    async with anyio.create_task_group() as group:
        group.start_soon(carrier.post, f"/shipments/{shipment_id}/cancel")
        await wait_until(voided)
        group.cancel_scope.cancel()

    calls = await requests_of(carrier, order_id)
    assert [(c["path"], c["outcome"]) for c in calls] == [
        ("/shipments", 201),
        (f"/shipments/{shipment_id}/cancel", "abandoned"),
    ]


async def test_latency_delays_carrier_answers(carrier: httpx.AsyncClient) -> None:
    order_id = new_order_id()
    await set_faults(carrier, latency_ms=150)

    started = time.monotonic()
    created = await create_shipment(carrier, shipment_body(order_id), new_key())
    create_elapsed = time.monotonic() - started
    started = time.monotonic()
    read = await carrier.get(f"/shipments/{created.json()['shipment_id']}")
    read_elapsed = time.monotonic() - started
    started = time.monotonic()
    find = await carrier.get("/shipments", params={"order_id": order_id})
    find_elapsed = time.monotonic() - started

    assert created.status_code == 201
    assert read.status_code == 200
    assert find.status_code == 200
    assert create_elapsed >= 0.15
    assert read_elapsed >= 0.15
    assert find_elapsed >= 0.15
    [call] = await requests_of(carrier, order_id)
    assert call["held_ms"] >= 149  # (timer granularity)


async def test_admin_api_is_never_delayed(carrier: httpx.AsyncClient) -> None:
    await set_faults(carrier, latency_ms=60_000, timeout_rate=1.0, error_rate=1.0)

    with anyio.fail_after(5):
        assert (await carrier.get("/admin/faults")).status_code == 200
        assert (await carrier.get("/admin/shipments")).status_code == 200
        assert (await carrier.get("/admin/requests")).status_code == 200
        assert (await carrier.get("/healthz")).status_code == 200
        assert (await carrier.delete("/admin/faults")).status_code == 200


async def test_a_seed_makes_the_faults_reproducible(start_carrier: StartCarrier) -> None:
    async def outcomes(carrier: httpx.AsyncClient) -> list[int]:
        await set_faults(carrier, error_rate=0.5, reject_rate=0.3)
        order_id = new_order_id()
        return [(await create_shipment(carrier, shipment_body(order_id), new_key())).status_code for _ in range(30)]

    first = await outcomes(await start_carrier(random_seed=7))
    second = await outcomes(await start_carrier(random_seed=7))

    assert first == second
    assert {201, 422, 503} <= set(first)
