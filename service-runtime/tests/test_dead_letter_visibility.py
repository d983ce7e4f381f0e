"""Dead letters are counted where the app sends them, and show in /metrics (readiness: each app's own tests)."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from order_contracts.dapr import BulkDelivery, DeliveryStatus
from service_runtime.bulk_testing import FakeDeadLetters, bulk_delivery
from service_runtime.dead_letters import CountingDeadLetters, DeadLetterTally, answer
from service_runtime.metrics import CONTENT_TYPE, metrics_router

pytestmark = pytest.mark.anyio

TOPIC = "order-events-dlq"


def _delivery(*events: object) -> BulkDelivery:
    return BulkDelivery.model_validate(bulk_delivery("order-events", *events))


async def test_each_entry_dead_lettered_is_counted_with_its_time() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    dead_letters = CountingDeadLetters(FakeDeadLetters(), tally)
    statuses = {"0": DeliveryStatus.DROP, "1": DeliveryStatus.SUCCESS, "2": DeliveryStatus.DROP}

    await answer(_delivery("poison", {"id": "e-1"}, "more poison"), statuses, dead_letters)

    assert (tally.dead_lettered, tally.failed) == (2, 0)
    assert tally.last_at is not None
    assert tally.last_at >= tally.started_at
    reason = tally.degraded_reason()
    assert reason is not None
    assert reason.startswith(f"2 event(s) dead-lettered to {TOPIC} since ")


async def test_an_entry_the_broker_refused_is_counted_as_a_failure_not_as_a_dead_letter() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    refusing = FakeDeadLetters()
    refusing.failing = RuntimeError("broker down")

    answered = await answer(_delivery("poison"), {"0": DeliveryStatus.DROP}, CountingDeadLetters(refusing, tally))

    assert [status.status for status in answered.statuses] == [DeliveryStatus.RETRY]
    assert (tally.dead_lettered, tally.failed, tally.last_at) == (0, 1, None)
    assert tally.degraded_reason() is None


def _metrics(tally: DeadLetterTally) -> tuple[str, str]:
    app = FastAPI()
    app.include_router(metrics_router(tally))
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    return response.headers["content-type"], response.text


def test_metrics_are_prometheus_text_with_the_counts() -> None:
    tally = DeadLetterTally(topic=TOPIC)
    content_type, before = _metrics(tally)
    tally.record()
    tally.failed = 3
    _, after = _metrics(tally)

    assert content_type == CONTENT_TYPE
    assert f'order_platform_dead_letters_total{{topic="{TOPIC}"}} 0.0\n' in before
    assert "order_platform_last_dead_letter_timestamp_seconds" not in before
    assert f'order_platform_dead_letters_total{{topic="{TOPIC}"}} 1.0\n' in after
    assert f'order_platform_dead_letter_failures_total{{topic="{TOPIC}"}} 3.0\n' in after
    assert f'order_platform_last_dead_letter_timestamp_seconds{{topic="{TOPIC}"}} ' in after
    samples = [line for line in after.splitlines() if not line.startswith("#")]
    assert all(len(line.split(" ")) == 2 for line in samples), samples  # name{labels} value: nothing else
    typed = {line.split(" ")[2] for line in after.splitlines() if line.startswith("# TYPE")}
    assert typed == {"order_platform_dead_letters_total", "order_platform_dead_letter_failures_total",
                     "order_platform_last_dead_letter_timestamp_seconds"}  # fmt: skip
