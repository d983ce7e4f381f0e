"""The order service dies (SIGKILL) right after the state transaction that stores an order and owes its event,
before anything is published. The order was stored, so it must still be published and ship once the service is
back: its relay finds the event in the outbox."""

import os
import signal
from collections.abc import Iterator

import httpx
import psutil
import pytest
from devstack.layout import Layout
from devstack.processes import ManagedProcess, start, wait_until
from devstack.stack import Stack

from tests.support.orders import new_order, wait_for_status

ORDER_SERVICE_PORT = 8000


def _process_listening_on(port: int) -> psutil.Process | None:
    for connection in psutil.net_connections(kind="tcp"):
        if (
            connection.status == psutil.CONN_LISTEN
            and getattr(connection.laddr, "port", None) == port
            and connection.pid
        ):
            return psutil.Process(connection.pid)
    return None


def _kill_listener(port: int) -> None:
    process = _process_listening_on(port)
    assert process is not None, f"nothing listens on {port}"
    process.kill()
    process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


class OrderServiceReplacement:
    """The order service started by hand beside its (still running) sidecar, as `dapr run` would start it."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.running: list[ManagedProcess] = []

    def start(self, name: str, **env: str) -> ManagedProcess:
        process = start(
            name,
            ["uv", "run", "--no-sync", "python", "-m", "order_service"],
            log_dir=self.layout.logs_dir,
            pid_dir=self.layout.pids_dir,
            cwd=self.layout.root / "order-service",
            env={"DAPR_HTTP_PORT": "3500", "DAPR_GRPC_PORT": "50001", **env},
        )
        self.running.append(process)
        healthz = f"http://127.0.0.1:{ORDER_SERVICE_PORT}/healthz"
        wait_until(lambda: _answers(healthz), what=name, timeout=60, process=process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            process.stop()


@pytest.fixture
def replacement(stack: Stack, layout: Layout) -> Iterator[OrderServiceReplacement]:
    replacement = OrderServiceReplacement(layout)
    try:
        yield replacement
    finally:
        replacement.stop_all()


def test_an_order_stored_just_before_a_crash_is_published_and_ships_after_restart(
    replacement: OrderServiceReplacement, order_api: httpx.Client
) -> None:
    _kill_listener(ORDER_SERVICE_PORT)  # the instance `dapr run` started; its sidecar stays up
    crashing = replacement.start("order-service-crashing", ORDER_SERVICE_FAULT_CRASH_AFTER_COMMIT="true")
    body = new_order()
    key = f"crash-drill-{os.getpid()}-{crashing.pid}"

    with pytest.raises(httpx.TransportError):  # the process dies mid-request: no answer
        order_api.post("/orders", json=body, headers={"Idempotency-Key": key})
    crashing.popen.wait(timeout=10)
    assert crashing.popen.returncode == 128 + signal.SIGKILL  # as `uv run` reports its child's SIGKILL

    replacement.start("order-service-restarted")
    replayed = order_api.post("/orders", json=body, headers={"Idempotency-Key": key})

    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"  # it was stored before the crash
    wait_for_status(order_api, replayed.json()["id"], "shipped", timeout=15)
