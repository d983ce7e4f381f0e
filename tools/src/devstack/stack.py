"""The whole local stack, in start order: the state store's server (alternates only), Kafka (+ topics), then
`dapr run -f`."""

import errno
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from devstack import dapr, kafka, state_stores
from devstack.layout import (
    APPS,
    KAFKA_CONTROLLER_PORT,
    KAFKA_PORT,
    LOOPBACK,
    POSTGRES_PORT,
    REDIS_PORT,
    Layout,
)
from devstack.processes import ManagedProcess, StartupError, wait_until
from devstack.state_stores import DEFAULT_STATE_STORE, StateStoreKind

Progress = Callable[[str], None]

SUBSCRIBER_GROUPS = {"order-service": "fulfillment-events", "fulfillment-service": "order-events"}
"""The Kafka consumer group of each app that subscribes (components/pubsub.yaml: group = app id), with the one topic
it subscribes to."""


STATE_STORE_PORTS: dict[StateStoreKind, list[int]] = {"sqlite": [], "postgres": [POSTGRES_PORT], "redis": [REDIS_PORT]}


def stack_ports(state_store: StateStoreKind = DEFAULT_STATE_STORE) -> list[int]:
    """Every fixed port the stack binds (listed in the README)."""
    ports = [KAFKA_PORT, KAFKA_CONTROLLER_PORT]
    for app in APPS:
        ports += [app.app_port, app.dapr_http_port, app.dapr_grpc_port, app.metrics_port]
    return ports + STATE_STORE_PORTS[state_store]


def ports_in_use(ports: list[int]) -> list[int]:
    """The ports a server of the stack could not bind on 127.0.0.1 right now.

    Probed by binding (with SO_REUSEADDR, as the servers do, so connections in TIME_WAIT don't count), never by
    connecting: a connect to a free port inside the ephemeral range can succeed against itself (TCP simultaneous
    open when the kernel picks that very port as the source), which once reported a free gRPC port as taken.
    """
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((LOOPBACK, port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                busy.append(port)
    return busy


def install(layout: Layout, progress: Progress, state_store: StateStoreKind = DEFAULT_STATE_STORE) -> None:
    """Build or fetch what is missing (idempotent: a second run reuses the per-machine cache)."""
    scripts = ["install-dapr.sh", "install-kafka.sh"]
    if state_store != "sqlite":
        scripts.append("install-state-stores.sh")
    for script in scripts:
        started = time.monotonic()
        progress(f"running tools/{script}")
        subprocess.run(["bash", str(layout.root / "tools" / script)], check=True)
        progress(f"tools/{script} done in {time.monotonic() - started:.1f} s")


@contextmanager
def _ignoring_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@dataclass
class Stack:
    layout: Layout
    progress: Progress = print
    state_store: StateStoreKind = DEFAULT_STATE_STORE
    processes: list[ManagedProcess] = field(default_factory=list)

    def start(self) -> None:
        busy = ports_in_use(stack_ports(self.state_store))
        if busy:
            raise StartupError(f"ports already in use: {busy} (a stack left running? `make down` stops it)")
        try:
            if self.state_store != "sqlite":
                self._step(
                    f"{self.state_store} (state store server)",
                    lambda: state_stores.start_server(self.layout, self.state_store),
                )
            self._step("Kafka (KRaft) on 127.0.0.1:9092", lambda: kafka.start_broker(self.layout))
            self._timed("topics " + ", ".join(kafka.TOPICS), kafka.ensure_topics)
            stale_members = kafka.consumer_group_members(tuple(SUBSCRIBER_GROUPS))
            run_file = state_stores.run_file(self.layout, self.state_store)
            self._step(
                f"apps and sidecars (dapr run -f {run_file.relative_to(self.layout.root)})",
                lambda: dapr.start_apps(self.layout, run_file),
            )
            self._timed(
                "subscriptions consuming (Kafka consumer groups stable)",
                lambda: wait_until(
                    partial(kafka.groups_consuming, SUBSCRIBER_GROUPS, stale_members=stale_members),
                    what="the sidecars' consumer groups to take every partition of the topic each subscribes to",
                    timeout=90,
                ),
            )
        except BaseException:
            self.stop()
            raise

    def process(self, name: str) -> ManagedProcess:
        return next(process for process in self.processes if process.name == name)

    def restart_kafka(self) -> None:
        """Start the broker again after it died or was killed (drills), on the same data, in the same place."""
        index = next(index for index, process in enumerate(self.processes) if process.name == "kafka")
        self.processes[index].stop()
        self.processes[index] = kafka.start_broker(self.layout)

    def stop(self) -> None:
        """Stop in reverse start order: apps first, so they never see their broker vanish. Not interruptible:
        a second Ctrl-C (a terminal's, and uv's forwarded copy of it) would leave processes behind."""
        with _ignoring_interrupts():
            for process in reversed(self.processes):
                process.stop()
            self.processes.clear()

    def _step(self, what: str, starter: Callable[[], ManagedProcess]) -> None:
        started = time.monotonic()
        self.progress(f"starting {what}")
        self.processes.append(starter())
        self.progress(f"{what} ready in {time.monotonic() - started:.1f} s")

    def _timed(self, what: str, action: Callable[[], None]) -> None:
        started = time.monotonic()
        action()
        self.progress(f"{what} ready in {time.monotonic() - started:.1f} s")
