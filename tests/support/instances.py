"""Extra app instances beside the stack `dapr run -f` started: a replacement for an app that was killed (its
sidecar stays up), or a whole second replica with its own sidecar. Every process started here is stopped by PID."""

import os
from dataclasses import dataclass, field

import httpx
import psutil
from devstack.dapr import app_health_flags
from devstack.layout import LOOPBACK, Layout
from devstack.processes import ManagedProcess, start, wait_until

from tests.support.fulfillment import stack_secret


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).is_success
    except httpx.HTTPError:
        return False


def kill_listener(port: int) -> None:
    """SIGKILL whatever listens on `port` (the app or sidecar a drill crashes)."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and getattr(connection.laddr, "port", None) == port:
            assert connection.pid, f"no PID for the listener on {port}"
            process = psutil.Process(connection.pid)
            process.kill()
            process.wait(timeout=10)
            return
    raise AssertionError(f"nothing listens on {port}")


@dataclass(frozen=True)
class Ports:
    app: int
    dapr_http: int
    dapr_grpc: int
    metrics: int


ORDER_SERVICE = Ports(app=8000, dapr_http=3500, dapr_grpc=50001, metrics=9101)
FULFILLMENT = Ports(app=8001, dapr_http=3501, dapr_grpc=50002, metrics=9102)
"""The instances of dapr.yaml."""
FULFILLMENT_REPLICA = Ports(app=8011, dapr_http=3511, dapr_grpc=50012, metrics=9112)


@dataclass
class Instances:
    layout: Layout
    started: list[ManagedProcess] = field(default_factory=list)

    def app(self, name: str, module: str, app_dir: str, ports: Ports, **env: str) -> ManagedProcess:
        """`python -m <module>` in `app_dir`, as `dapr run` starts it, beside the sidecar on `ports` (running)."""
        process = start(
            name,
            ["uv", "run", "--no-sync", "python", "-m", module],
            log_dir=self.layout.logs_dir,
            pid_dir=self.layout.pids_dir,
            cwd=self.layout.root / app_dir,
            env={
                "DAPR_HTTP_PORT": str(ports.dapr_http),
                "DAPR_GRPC_PORT": str(ports.dapr_grpc),
                "APP_API_TOKEN": stack_secret("APP_API_TOKEN"),
                "DAPR_API_TOKEN": stack_secret("DAPR_API_TOKEN"),
                **env,
            },
        )
        self.started.append(process)
        wait_until(lambda: _answers(f"http://{LOOPBACK}:{ports.app}/healthz"), what=name, timeout=60, process=process)
        return process

    def fulfillment(self, name: str, ports: Ports = FULFILLMENT, **env: str) -> ManagedProcess:
        return self.app(
            name,
            "fulfillment_service",
            "fulfillment-service",
            ports,
            FULFILLMENT_SERVICE_PORT=str(ports.app),
            CARRIER_WEBHOOK_SECRET=stack_secret("CARRIER_WEBHOOK_SECRET"),
            **env,
        )

    def sidecar(self, name: str, app_id: str, ports: Ports, app_dir: str) -> ManagedProcess:
        """A daprd for `app_id` on `ports`, started as `dapr run -f dapr.yaml` starts one (same components, config,
        listen addresses): a second replica's, or the replacement of a sidecar a drill killed (running)."""
        root = self.layout.root
        command = [
            str(self.layout.dapr_bin / "daprd"), "--app-id", app_id, "--app-port", str(ports.app),
            "--app-protocol", "http", "--dapr-http-port", str(ports.dapr_http),
            "--dapr-grpc-port", str(ports.dapr_grpc), "--metrics-port", str(ports.metrics),
            "--dapr-listen-addresses", LOOPBACK, "--dapr-internal-grpc-listen-address", LOOPBACK,
            "--metrics-listen-address", LOOPBACK, "--log-level", "info", "--app-max-concurrency", "-1",
            "--resources-path", str(root / "components"), "--config", str(root / "components" / "config.yaml"),
            *app_health_flags(self.layout),
        ]  # fmt: skip
        process = start(
            name,
            command,
            log_dir=self.layout.logs_dir,
            pid_dir=self.layout.pids_dir,
            cwd=root / app_dir,  # the components name SQLite files relative to the app's folder, as under dapr run
            env={
                "APP_API_TOKEN": stack_secret("APP_API_TOKEN"),
                "DAPR_API_TOKEN": stack_secret("DAPR_API_TOKEN"),
                "DAPR_HOST_IP": LOOPBACK,
            },
        )
        self.started.append(process)
        healthz = f"http://{LOOPBACK}:{ports.dapr_http}/v1.0/healthz/outbound"
        wait_until(lambda: _answers(healthz), what=name, timeout=60, process=process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()
        self.started.clear()


def sigkill(process: ManagedProcess) -> None:
    """Kill the process and everything in its group at once (uv and the app under it), as a crash would."""
    os.killpg(process.pid, 9)
    process.popen.wait(timeout=10)
