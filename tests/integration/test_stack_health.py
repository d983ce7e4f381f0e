"""The stack as `make up` starts it: every sidecar healthy, every app alive, and the ports the README and dapr.yaml
promise."""

import httpx
import pytest
from confluent_kafka.admin import ConfigResource
from devstack import kafka
from devstack.layout import APPS, App
from devstack.stack import Stack

from tests.support.fulfillment import sidecar_headers


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

    sidecar = f"http://127.0.0.1:{app.dapr_http_port}"
    metadata = httpx.get(f"{sidecar}/v1.0/metadata", headers=sidecar_headers(), timeout=5).json()

    assert metadata["id"] == app.app_id
    assert {component["name"] for component in metadata.get("components", [])} == expected


def test_the_fulfillment_sidecar_subscribed_to_order_events_only_on_one_path_with_a_dead_letter_topic(
    stack: Stack,
) -> None:
    metadata = httpx.get("http://127.0.0.1:3501/v1.0/metadata", headers=sidecar_headers(), timeout=5).json()

    [subscription] = metadata["subscriptions"]
    assert subscription["topic"] == "order-events"
    assert subscription["deadLetterTopic"] == "order-events-dlq"
    # One path, the default route (a bulk batch is split by route): no event is dead-lettered for want of one.
    assert [rule["path"] for rule in subscription["rules"]] == ["/events/order-events"]


def test_the_order_sidecar_subscribed_to_fulfillment_events_only_on_one_path_with_a_dead_letter_topic(
    stack: Stack,
) -> None:
    metadata = httpx.get("http://127.0.0.1:3500/v1.0/metadata", headers=sidecar_headers(), timeout=5).json()

    [subscription] = metadata["subscriptions"]
    assert subscription["topic"] == "fulfillment-events"
    assert subscription["deadLetterTopic"] == "fulfillment-events-dlq"
    assert [rule["path"] for rule in subscription["rules"]] == ["/events/fulfillment-events"]


def test_each_apps_consumer_group_is_assigned_the_partitions_of_its_own_topic_only(stack: Stack) -> None:
    """Each event is delivered to the one app that uses it, not to both."""
    admin = kafka.admin_client()  # held until the futures resolve

    described = admin.describe_consumer_groups(["order-service", "fulfillment-service"], request_timeout=5)

    assigned = {
        group: {
            assignment.topic
            for member in future.result(timeout=10).members
            for assignment in member.assignment.topic_partitions
        }
        for group, future in described.items()
    }
    assert assigned == {"order-service": {"fulfillment-events"}, "fulfillment-service": {"order-events"}}


def test_the_order_service_is_ready_when_its_state_store_answers(order_api: httpx.Client) -> None:
    ready = order_api.get("/readyz")

    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["state_store"] == "ok"


def test_dead_letters_are_kept_until_replayed(stack: Stack) -> None:
    """The broker's default retention (7 days) would delete a dead letter nobody replayed in time."""
    admin = kafka.admin_client()
    resources = [ConfigResource(ConfigResource.Type.TOPIC, topic) for topic in kafka.TOPIC_CONFIGS]

    for resource, future in admin.describe_configs(resources).items():
        assert future.result(timeout=10)["retention.ms"].value == "-1", resource.name
