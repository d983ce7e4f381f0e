"""`make up` as a user runs it: the launcher (`devstack up`) brings the whole stack up from its cache, the system
works, Ctrl-C stops everything gracefully (in-flight requests finish) and no process or port is left behind; and
`make up STATE_STORE=postgres` runs it on PostgreSQL, whose server `make down` stops with the rest.

These tests start their own stacks, so they run in their own pytest session (`make test-launcher`), never beside
the shared stack of tests/e2e and tests/integration.
"""

import os
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devstack.layout import Layout
from devstack.stack import ports_in_use, stack_ports

from tests.support.orders import new_order, wait_for_status
from tests.support.polling import eventually
from tests.support.postgres import is_row

READY_LINE = re.compile(r"stack ready in (?P<seconds>[0-9.]+) s")
SECOND_START_BUDGET_SECONDS = 60


DEVSTACK_UP = ["uv", "run", "--frozen", "devstack", "up"]


class Launcher:
    """`command` (`uv run devstack up` unless told) in its own process group, as a terminal would run it."""

    def __init__(self, layout: Layout, log_path: Path, command: list[str] = DEVSTACK_UP) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=layout.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> float:
        def ready_seconds() -> float | None:
            assert self.process.poll() is None, f"devstack up exited early:\n{self.output()}"
            match = READY_LINE.search(self.output())
            return float(match["seconds"]) if match else None

        return eventually(ready_seconds, timeout=300, interval=0.2, what="devstack up to report the stack ready")

    def press_ctrl_c(self) -> int:
        """What a terminal does on Ctrl-C: SIGINT to the foreground process group (uv and devstack)."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=120)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def layout() -> Layout:
    return Layout.discover()


@pytest.fixture
def launcher(layout: Layout, tmp_path: Path) -> Iterator[Launcher]:
    assert not ports_in_use(stack_ports()), "a stack is already running: stop it with `make down`"
    running = Launcher(layout, tmp_path / "devstack-up.log")
    try:
        yield running
    finally:
        running.kill()
        subprocess.run(["uv", "run", "--frozen", "devstack", "down"], cwd=layout.root, check=True)


def _post_shipment_in_flight(results: list[httpx.Response]) -> None:
    shipment = {
        "order_id": "graceful-shutdown",
        "recipient": {"name": "Jane Doe", "address": {"line1": "1 Example Street", "city": "London",
                                                      "postal_code": "SW1A 1AA", "country": "GB"}},
        "items": [{"sku": "BOOK-123", "quantity": 1}],
    }  # fmt: skip
    results.append(
        httpx.post(
            "http://127.0.0.1:8002/shipments",
            json=shipment,
            headers={"Idempotency-Key": "graceful-shutdown"},
            timeout=30,
        )
    )


def test_make_up_starts_a_working_stack_and_ctrl_c_stops_it_gracefully(launcher: Launcher, layout: Layout) -> None:
    startup_seconds = launcher.wait_ready()

    # Installed already (the test session's `make install` built everything): no rebuild, a quick start.
    assert "already built" in launcher.output()
    assert startup_seconds < SECOND_START_BUDGET_SECONDS
    with httpx.Client(base_url="http://127.0.0.1:8000", timeout=10) as api:
        order_id = api.post("/orders", json=new_order()).json()["id"]
        wait_for_status(api, order_id, "shipped", timeout=5)

    # An in-flight request when Ctrl-C comes still gets its answer.
    carrier_admin = httpx.Client(base_url="http://127.0.0.1:8002", timeout=10)
    carrier_admin.put("/admin/faults", json={"latency_ms": 1500}).raise_for_status()
    results: list[httpx.Response] = []
    in_flight = threading.Thread(target=_post_shipment_in_flight, args=(results,))
    in_flight.start()
    eventually(
        lambda: carrier_admin.get("/admin/requests", params={"order_id": "graceful-shutdown"}).json() or None,
        timeout=10,
        what="the shipment request to reach the carrier",
    )

    exit_code = launcher.press_ctrl_c()
    in_flight.join(timeout=30)

    assert exit_code == 0, launcher.output()
    assert [response.status_code for response in results] == [201]
    assert ports_in_use(stack_ports()) == []
    assert list(layout.pids_dir.glob("*.pid")) == []


def test_make_down_stops_a_stack_whose_launcher_died(launcher: Launcher, layout: Layout) -> None:
    launcher.wait_ready()
    launcher.kill()  # the launcher is gone; Kafka, Dapr and the apps live on in their own process groups
    assert ports_in_use(stack_ports()) != []

    subprocess.run(["uv", "run", "--frozen", "devstack", "down"], cwd=layout.root, check=True)

    assert ports_in_use(stack_ports()) == []
    assert list(layout.pids_dir.glob("*.pid")) == []


def test_make_up_on_postgresql_runs_the_system_there_and_make_down_stops_its_server_too(
    layout: Layout, tmp_path: Path
) -> None:
    assert not ports_in_use(stack_ports("postgres")), "a stack is already running: stop it with `make down`"
    launcher = Launcher(
        layout, tmp_path / "make-up.log", ["make", "--no-print-directory", "up", "STATE_STORE=postgres"]
    )
    try:
        launcher.wait_ready()
        with httpx.Client(base_url="http://127.0.0.1:8000", timeout=10) as api:
            order_id = api.post("/orders", json=new_order()).json()["id"]
            wait_for_status(api, order_id, "shipped", timeout=5)
        assert is_row(layout, "orders_state", f"order-service||{order_id}")
    finally:
        launcher.kill()
        subprocess.run(["uv", "run", "--frozen", "devstack", "down"], cwd=layout.root, check=True)

    assert ports_in_use(stack_ports("postgres")) == []
    assert list(layout.pids_dir.glob("*.pid")) == []
