"""The mock behind a real server: disconnects seen by uvicorn, and ``python -m shipping_mock`` with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import anyio
import httpx
import pytest
import uvicorn
from service_runtime.serving import thread_pool_calls
from shipping_mock.config import Settings
from shipping_mock.main import create_app
from shipping_mock_testkit import (
    create_shipment,
    new_key,
    new_order_id,
    requests_of,
    set_faults,
    shipment_body,
    shipments_of,
    wait_until,
)


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.anyio
async def test_a_client_that_hangs_up_during_the_hold_is_recorded_abandoned() -> None:
    app = create_app(Settings(hold_seconds=30, random_seed=1))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    sock = _listening_socket()
    port = sock.getsockname()[1]
    order_id = new_order_id()

    async def server_started() -> bool:
        return server.started

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            try:
                await wait_until(server_started)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                    await set_faults(client, timeout_rate=1.0)
                    with pytest.raises(httpx.ReadTimeout):
                        await client.post(
                            "/shipments",
                            json=shipment_body(order_id),
                            headers={"Idempotency-Key": new_key()},
                            timeout=httpx.Timeout(5.0, read=0.3),
                        )

                    async def abandoned() -> bool:
                        return [c["outcome"] for c in await requests_of(client, order_id)] == ["abandoned"]

                    await wait_until(abandoned)
                    [call] = await requests_of(client, order_id)
                    assert 200 <= call["held_ms"] < 30_000  # about the client's 0.3 s read timeout
                    assert len(await shipments_of(client, order_id)) == 1
            finally:
                server.should_exit = True
    finally:
        sock.close()


def _free_port() -> int:
    with _listening_socket() as sock:
        port: int = sock.getsockname()[1]
        return port


def test_python_m_shipping_mock_serves_then_stops_cleanly_on_sigterm() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shipping_mock"],
        env={**os.environ, "CARRIER_PORT": str(port), "CARRIER_CARRIER_NAME": "Test Parcel"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the mock exited before it served"
            assert time.monotonic() < deadline, "the mock did not come up"
            time.sleep(0.05)

        created = anyio.run(_create_one, base_url)
        assert created.status_code == 201
        assert created.json()["carrier"] == "Test Parcel"

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    # uvicorn shuts down gracefully, then re-raises the signal it caught: the exit status says "SIGTERM".
    assert process.returncode in (0, -signal.SIGTERM), stderr
    events = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "event"} <= set(event) for event in events)
    names = [event["event"] for event in events if event["logger"].startswith("shipping_mock")]
    assert names == ["carrier_started", "shipment_created", "carrier_call_answered", "carrier_stopped"]


async def _create_one(base_url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url) as client:
        return await create_shipment(client, shipment_body(new_order_id()), new_key())


def test_no_endpoint_or_dependency_runs_in_the_thread_pool() -> None:
    """The mock runs on the same cores as the stack: a thread hop per call to the carrier costs them."""
    assert thread_pool_calls(create_app(Settings())) == []
