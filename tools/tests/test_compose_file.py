"""docker-compose.yml cannot be run here (no Docker engine), so at least it must describe the same system as
dapr.yaml: the same apps, each with a sidecar on the same ports, locked down the same way, and the same Dapr
version as the local build."""

from typing import Any

import yaml
from devstack.dapr import app_health_flags
from devstack.layout import APPS, Layout


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((Layout.discover().root / "docker-compose.yml").read_text())
    return compose


def _flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_every_app_has_a_sidecar_on_the_ports_of_dapr_yaml() -> None:
    services = _compose()["services"]

    for app in APPS:
        command = services[f"{app.app_id}-dapr"]["command"]
        assert _flag(command, "--app-id") == app.app_id
        assert int(_flag(command, "--app-port")) == app.app_port
        assert int(_flag(command, "--dapr-http-port")) == app.dapr_http_port
        assert int(_flag(command, "--dapr-grpc-port")) == app.dapr_grpc_port
        assert int(_flag(command, "--metrics-port")) == app.metrics_port
        assert app.app_id in services


def test_every_sidecar_binds_to_loopback_and_requires_the_dapr_api_token() -> None:
    services = _compose()["services"]

    for app in APPS:
        sidecar = services[f"{app.app_id}-dapr"]
        for flag in ("--dapr-listen-addresses", "--dapr-internal-grpc-listen-address", "--metrics-listen-address"):
            assert _flag(sidecar["command"], flag) == "127.0.0.1"
        assert sidecar["environment"]["DAPR_API_TOKEN"] == "${DAPR_API_TOKEN:?export DAPR_API_TOKEN}"


def test_the_containers_run_the_dapr_version_the_project_builds() -> None:
    version = Layout.discover().versions["DAPR_VERSION"]
    services = _compose()["services"]

    images = {service["image"] for service in services.values() if "image" in service and "dapr" in service["image"]}

    assert images == {f"daprio/daprd:{version}"}  # no placement or scheduler: nothing uses actors or jobs


def test_every_sidecar_checks_its_app_s_health_as_dapr_yaml_says() -> None:
    """While its app is down a sidecar must stop delivering, not retry into the dead-letter topic (dapr.yaml)."""
    services = _compose()["services"]
    flags = app_health_flags(Layout.discover())

    assert "--enable-app-health-check=true" in flags
    for app in APPS:
        command = services[f"{app.app_id}-dapr"]["command"]
        assert command[-len(flags) :] == flags, app.app_id
