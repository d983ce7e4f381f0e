"""`GET /metrics`: the app's own numbers in Prometheus' text format, rendered by prometheus_client. Each sidecar
serves daprd's metrics on its own port (README, "What runs, and on which ports"); these are what daprd cannot
know, such as the poison an app dead-letters itself and answers SUCCESS for (service_runtime/dead_letters.py).

The numbers live in the app's DeadLetterTally (readiness reads it too); a collector reads them at each scrape.
Counters count from the start of the process, as Prometheus expects (`increase()` handles restarts): alert on
`increase(order_platform_dead_letters_total[15m]) > 0`.
"""

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service_runtime.dead_letters import DeadLetterTally

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _DeadLetterCollector(Collector):
    def __init__(self, tally: DeadLetterTally) -> None:
        self._tally = tally

    def collect(self) -> Iterator[Metric]:
        tally = self._tally
        dead_lettered = CounterMetricFamily(
            "order_platform_dead_letters",
            "Events this process put on its subscription's dead-letter topic.",
            labels=["topic"],
        )
        dead_lettered.add_metric([tally.topic], tally.dead_lettered)
        failed = CounterMetricFamily(
            "order_platform_dead_letter_failures",
            "Events the broker did not take on the dead-letter topic (answered RETRY: delivered again).",
            labels=["topic"],
        )
        failed.add_metric([tally.topic], tally.failed)
        yield from (dead_lettered, failed)
        if tally.last_at is not None:
            last = GaugeMetricFamily(
                "order_platform_last_dead_letter_timestamp_seconds",
                "When this process last dead-lettered an event.",
                labels=["topic"],
            )
            last.add_metric([tally.topic], tally.last_at.timestamp())
            yield last


def metrics_router(tally: DeadLetterTally) -> APIRouter:
    """The `/metrics` route, reading `tally` (the one the app's CountingDeadLetters counts in)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DeadLetterCollector(tally))
    router = APIRouter(tags=["health"])

    @router.get(
        "/metrics",
        summary="The app's metrics, in Prometheus' text format",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE)

    return router
