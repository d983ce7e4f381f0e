"""Dapr: the apps with their sidecars under `dapr run -f dapr.yaml`, exactly as a user runs them, with the secrets
they share."""

import os
import secrets
from functools import partial
from pathlib import Path

import httpx
import yaml

from devstack.layout import APPS, LOOPBACK, Layout
from devstack.processes import ManagedProcess, start, wait_until


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).is_success
    except httpx.HTTPError:
        return False


STACK_SECRETS = ("DAPR_API_TOKEN", "APP_API_TOKEN", "CARRIER_WEBHOOK_SECRET", "POSTGRES_PASSWORD")
"""DAPR_API_TOKEN: every sidecar refuses a call to its API without it (`dapr-api-token` header), health checks
excepted; the apps, tests and tools send it.
APP_API_TOKEN: daprd sends it to its app as `dapr-api-token`, the apps check it on their event endpoints.
CARRIER_WEBHOOK_SECRET: the carrier signs delivery webhooks with it, fulfillment verifies them.
POSTGRES_PASSWORD: the PostgreSQL alternate's server asks for it (devstack.state_stores); its sidecars read it from
their environment through the secret store components/alternates/postgres/secretstore-postgres.yaml."""


APP_HEALTH_FLAGS = {
    "enableAppHealthCheck": "--enable-app-health-check",
    "appHealthCheckPath": "--app-health-check-path",
    "appHealthProbeInterval": "--app-health-probe-interval",
    "appHealthProbeTimeout": "--app-health-probe-timeout",
    "appHealthThreshold": "--app-health-threshold",
}
"""The run file's app health fields and the daprd flag the CLI passes for each (dapr CLI 1.16.5,
pkg/standalone/run.go)."""


def app_health_flags(layout: Layout) -> list[str]:
    """The app health check flags `dapr run -f dapr.yaml` gives every sidecar (the run file's `common`), for a
    daprd started by hand: a drill's replacement sidecar, a second replica's."""
    common = yaml.safe_load((layout.root / "dapr.yaml").read_text()).get("common", {})
    flags: list[str] = []
    for field, flag in APP_HEALTH_FLAGS.items():
        if field in common:
            value = common[field]
            flags += [f"{flag}={str(value).lower()}"] if isinstance(value, bool) else [flag, str(value)]
    return flags


def stored_secrets(layout: Layout) -> dict[str, str]:
    """The secrets in `.run/secrets.env` (empty before a first `make up`)."""
    stored: dict[str, str] = {}
    if layout.secrets_file.exists():
        for line in layout.secrets_file.read_text().splitlines():
            name, _, value = line.partition("=")
            stored[name] = value
    return stored


def stack_secrets(layout: Layout) -> dict[str, str]:
    """The secrets the apps and sidecars share: taken from the environment when set there, else generated once per
    checkout into `.run/secrets.env` (readable by its owner only) and reused, so tests and tools can read them."""
    stored = stored_secrets(layout)
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
