"""The stack as `make up` starts it: every sidecar healthy (placement and scheduler running, so /v1.0/healthz
and not only /healthz/outbound), every app alive, and the ports the README and dapr.yaml promise."""

import httpx
import pytest
from devstack.layout import APPS, App
from devstack.stack import Stack


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.app_id)
def test_every_sidecar_reports_healthy(stack: Stack, app: App) -> None:
    assert httpx.get(f"http://127.0.0.1:{app.dapr_http_port}/v1.0/healthz", timeout=5).status_code == 204


@pytest.mark.parametrize("app", APPS, ids=lambda app: app.app_id)
def test_every_sidecar_loaded_the_components_its_app_is_scoped_to(stack: Stack, app: App) -> None:
    expected = {
        "order-service": {"order-pubsub", "order-store"},
        "fulfillment-service": {"order-pubsub", "fulfillment-store"},
        "shipping-mock": set(),
    }[app.app_id]

    metadata = httpx.get(f"http://127.0.0.1:{app.dapr_http_port}/v1.0/metadata", timeout=5).json()

    assert metadata["id"] == app.app_id
    assert {component["name"] for component in metadata.get("components", [])} == expected


def test_the_fulfillment_sidecar_subscribed_with_a_default_route_and_a_dead_letter_topic(stack: Stack) -> None:
    metadata = httpx.get("http://127.0.0.1:3501/v1.0/metadata", timeout=5).json()

    [subscription] = [s for s in metadata["subscriptions"] if s["topic"] == "order-events"]
    assert subscription["deadLetterTopic"] == "order-events-dlq"
    assert subscription["rules"][-1]["path"] == "/events/other"  # the default route: no event is dead-lettered
    assert any("order.created.v1" in rule.get("match", "") for rule in subscription["rules"])


def test_the_order_service_is_ready_when_its_state_store_answers(order_api: httpx.Client) -> None:
    ready = order_api.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["state_store"] == "ok"
