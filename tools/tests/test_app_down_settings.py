"""An app that is down loses nothing (issue 11): its sidecar stops delivering while the app's health checks fail
(dapr.yaml), and retries of a delivery to an app that is up never run out (components/resiliency.yaml). The real
stack shows both in tests/drills/test_app_down.py; these pin the settings that do it."""

from typing import Any

import yaml
from devstack.layout import Layout

SUBSCRIBERS = ("order-service", "fulfillment-service")
LIVENESS_PATH = "/healthz"
"""service_runtime.liveness: answers while the process serves, needs no token, reads nothing."""


def _yaml(relative: str) -> Any:
    return yaml.safe_load((Layout.discover().root / relative).read_text())


def _run_settings(app_id: str) -> dict[str, Any]:
    """What `dapr run -f` passes for the app: `common`, overridden by the app's own entry (dapr CLI 1.16.5,
    pkg/runfileconfig)."""
    run_file = _yaml("dapr.yaml")
    [app] = [app for app in run_file["apps"] if app["appID"] == app_id]
    return {**run_file.get("common", {}), **app}


def test_every_subscriber_s_sidecar_checks_its_app_s_liveness() -> None:
    for app_id in SUBSCRIBERS:
        settings = _run_settings(app_id)
        assert settings.get("enableAppHealthCheck") is True, app_id
        assert settings.get("appHealthCheckPath") == LIVENESS_PATH, app_id
        # daprd refuses to start probing when a probe may last longer than the interval (pkg/apphealth).
        assert 0 < settings["appHealthProbeTimeout"] <= 1000 * settings["appHealthProbeInterval"], app_id
        assert settings["appHealthThreshold"] >= 2, f"{app_id}: one slow probe must not stop its subscriptions"


def test_deliveries_to_an_app_are_retried_without_limit() -> None:
    resiliency = _yaml("components/resiliency.yaml")["spec"]

    policy = resiliency["targets"]["components"]["order-pubsub"]["inbound"]["retry"]
    retry = resiliency["policies"]["retries"][policy]

    assert retry["maxRetries"] == -1, "a bounded budget dead-letters the head events of a long outage"
    assert "matching" not in retry, "every failure that reaches the inbound policy is transient"
