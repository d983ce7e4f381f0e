"""Dapr: the control plane `dapr init --slim` would start (placement, scheduler), then the apps with their
sidecars under `dapr run -f dapr.yaml`, exactly as a user runs them."""

import os
import secrets
from functools import partial
from pathlib import Path

import httpx

from devstack.layout import (
    APPS,
    LOOPBACK,
    PLACEMENT_HEALTHZ_PORT,
    PLACEMENT_METRICS_PORT,
    PLACEMENT_PORT,
    SCHEDULER_ETCD_CLIENT_PORT,
    SCHEDULER_ETCD_PEER_PORT,
    SCHEDULER_HEALTHZ_PORT,
    SCHEDULER_METRICS_PORT,
    SCHEDULER_PORT,
    Layout,
)
from devstack.processes import ManagedProcess, start, wait_until


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).is_success
    except httpx.HTTPError:
        return False


STACK_SECRETS = ("APP_API_TOKEN", "CARRIER_WEBHOOK_SECRET")
"""APP_API_TOKEN: daprd sends it to its app as `dapr-api-token`, the apps check it on their event endpoints.
CARRIER_WEBHOOK_SECRET: the carrier signs delivery webhooks with it, fulfillment verifies them."""


def start_placement(layout: Layout, timeout: float = 30.0) -> ManagedProcess:
    command = [
        str(layout.dapr_bin / "placement"),
        "--listen-address", LOOPBACK,
        "--port", str(PLACEMENT_PORT),
        "--healthz-listen-address", LOOPBACK,
        "--healthz-port", str(PLACEMENT_HEALTHZ_PORT),
        "--metrics-listen-address", LOOPBACK,
        "--metrics-port", str(PLACEMENT_METRICS_PORT),
    ]  # fmt: skip
    placement = start("placement", command, log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=layout.root)
    healthz = f"http://{LOOPBACK}:{PLACEMENT_HEALTHZ_PORT}/healthz"
    wait_until(lambda: answers(healthz), what="placement", timeout=timeout, process=placement)
    return placement


def start_scheduler(layout: Layout, timeout: float = 60.0) -> ManagedProcess:
    layout.scheduler_data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(layout.dapr_bin / "scheduler"),
        "--listen-address", LOOPBACK,
        "--port", str(SCHEDULER_PORT),
        "--healthz-listen-address", LOOPBACK,
        "--healthz-port", str(SCHEDULER_HEALTHZ_PORT),
        "--metrics-listen-address", LOOPBACK,
        "--metrics-port", str(SCHEDULER_METRICS_PORT),
        "--etcd-data-dir", str(layout.scheduler_data_dir),
        "--etcd-client-listen-address", LOOPBACK,
        "--etcd-client-port", str(SCHEDULER_ETCD_CLIENT_PORT),
        "--etcd-initial-cluster", f"dapr-scheduler-server-0=http://{LOOPBACK}:{SCHEDULER_ETCD_PEER_PORT}",
    ]  # fmt: skip
    scheduler = start("scheduler", command, log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=layout.root)
    healthz = f"http://{LOOPBACK}:{SCHEDULER_HEALTHZ_PORT}/healthz"
    wait_until(lambda: answers(healthz), what="scheduler", timeout=timeout, process=scheduler)
    return scheduler


def stack_secrets(layout: Layout) -> dict[str, str]:
    """The secrets the apps and sidecars share: taken from the environment when set there, else generated once per
    checkout into `.run/secrets.env` (readable by its owner only) and reused, so tests and tools can read them."""
    stored: dict[str, str] = {}
    if layout.secrets_file.exists():
        for line in layout.secrets_file.read_text().splitlines():
            name, _, value = line.partition("=")
            stored[name] = value
    values = {name: os.environ.get(name) or stored.get(name) or secrets.token_urlsafe(32) for name in STACK_SECRETS}
    if values != stored:
        layout.run_dir.mkdir(parents=True, exist_ok=True)
        layout.secrets_file.touch(mode=0o600)
        layout.secrets_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return values


def start_apps(layout: Layout, run_file: Path | None = None, timeout: float = 120.0) -> ManagedProcess:
    """`dapr run -f dapr.yaml`; ready when every sidecar reports healthy and every app answers /healthz."""
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    command = [str(layout.dapr_bin / "dapr"), "run", "-f", str(run_file or layout.root / "dapr.yaml")]
    env = {
        "DAPR_RUNTIME_PATH": str(layout.root),
        "PATH": f"{layout.dapr_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        **stack_secrets(layout),
    }
    apps = start("dapr-run", command, log_dir=layout.logs_dir, pid_dir=layout.pids_dir, cwd=layout.root, env=env)
    for app in APPS:
        sidecar = f"http://{LOOPBACK}:{app.dapr_http_port}/v1.0/healthz"
        wait_until(partial(answers, sidecar), what=f"{app.app_id}'s sidecar", timeout=timeout, process=apps)
        own = f"http://{LOOPBACK}:{app.app_port}/healthz"
        wait_until(partial(answers, own), what=app.app_id, timeout=timeout, process=apps)
    return apps
