"""A broker outage never loses an accepted order: orders keep being accepted (201, fast) while Kafka is killed or
paused, and once it is back every one of them is published and ships, exactly once."""

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import httpx
import pytest
from devstack.layout import Layout
from devstack.stack import Stack

from tests.support.audit import Audit
from tests.support.load import Answer, OrderStream
from tests.support.polling import eventually

ORDERS_PER_SECOND = 10
OUTAGE_ORDERS = 20 * ORDERS_PER_SECOND  # the outage lasts while 200 orders are placed: 20 s at 10/s
MAX_ANSWER_SECONDS = 2.0


def _drill(
    layout: Layout,
    carrier_admin: httpx.Client,
    audit: Audit,
    *,
    name: str,
    break_broker: Callable[[], None],
    mend_broker: Callable[[], None],
) -> None:
    stream = OrderStream(interval=1 / ORDERS_PER_SECOND, timeout=10)
    stream.start()
    eventually(lambda: len(stream.answers) >= 30, timeout=30, what="orders flowing before the outage")

    break_broker()
    before_outage = len(stream.answers)
    outage_started = time.monotonic()
    # Readiness stays green (orders can be stored) and says that publishing is failing.
    readiness = eventually(
        lambda: (
            (ready := httpx.get("http://127.0.0.1:8000/readyz", timeout=5)).json()["event_publishing"] == "failing"
            and ready
        ),
        timeout=30,
        what="readiness to report the broker outage",
    )
    assert readiness.status_code == 200
    assert readiness.json()["events_owed"] > 0
    assert readiness.json()["status"] == "degraded"
    eventually(lambda: len(stream.answers) >= before_outage + OUTAGE_ORDERS, timeout=120, what="the outage")
    during_outage = stream.answers[before_outage:]
    mend_broker()
    mended_at = time.monotonic()
    mended_wall = datetime.now(UTC)
    after = len(stream.answers)
    eventually(lambda: len(stream.answers) >= after + 30, timeout=60, what="orders flowing after the outage")
    answers = stream.stop()

    statuses = Counter(answer.status for answer in answers)
    assert set(statuses) <= {201, 503}, f"only 201, or 503 with Retry-After, may answer a create: {statuses}"
    slowest = max(answer.seconds for answer in answers)
    assert slowest < MAX_ANSWER_SECONDS, f"a create took {slowest:.2f} s"
    accepted = [answer.order_id for answer in answers if answer.order_id is not None]

    def shipments_per_order() -> Counter[str]:
        return Counter(shipment["order_id"] for shipment in carrier_admin.get("/admin/shipments").json())

    eventually(
        lambda: set(accepted) <= set(shipments_per_order()),
        timeout=240,
        interval=1,
        what=f"all {len(accepted)} accepted orders shipped",
    )
    drained_seconds = time.monotonic() - mended_at
    healthy = {
        "ready": True,
        "status": "ok",
        "degraded_reason": None,
        "state_store": "ok",
        "event_publishing": "ok",
        "events_owed": 0,
        "last_publish_error": None,
        "publishing_failing_since": None,
    }  # every one of these, whatever else readiness reports beside them
    eventually(
        lambda: healthy.items() <= httpx.get("http://127.0.0.1:8000/readyz", timeout=5).json().items(),
        timeout=30,
        what="readiness to report publishing healthy and nothing owed",
    )
    shipped = shipments_per_order()
    assert all(shipped[order_id] == 1 for order_id in accepted), "an order shipped twice"

    def shows_shipped(order_id: str) -> bool:  # and perhaps delivered since
        order = httpx.get(f"http://127.0.0.1:8000/orders/{order_id}", timeout=5).json()
        return "shipped" in [entry["status"] for entry in order["history"]]

    for order_id in accepted[:: max(1, len(accepted) // 20)]:  # and the orders themselves say so, once folded
        # The carrier's record comes first: a fulfillment.shipped.v1 the broker refused during its restart is
        # published again by fulfillment's worker (within OWED_EVENTS_GRACE, 30 s), then folded.
        eventually(partial(shows_shipped, order_id), timeout=60, interval=0.5, what=f"order {order_id} shipped")
    _record(layout, name, during_outage, answers, outage_seconds=mended_at - outage_started,
            drained_seconds=drained_seconds)  # fmt: skip
    audit.check(
        f"{name} ({mended_at - outage_started:.0f} s at {ORDERS_PER_SECOND}/s)",
        stream,
        fault_ended_at=mended_wall,
        notes=f"all shipped {drained_seconds:.1f} s after the broker was back",
    )


def _record(
    layout: Layout,
    name: str,
    during_outage: list[Answer],
    answers: list[Answer],
    *,
    outage_seconds: float,
    drained_seconds: float,
) -> None:
    """What the drill measured, for the notes (printed, and kept in .run/drills/)."""
    seconds = sorted(answer.seconds for answer in answers)
    result = {
        "drill": name,
        "outage_seconds": round(outage_seconds, 1),
        "creates": len(answers),
        "answers_during_outage": dict(Counter(str(answer.status) for answer in during_outage)),
        "answers_overall": dict(Counter(str(answer.status) for answer in answers)),
        "create_p50_ms": round(1000 * seconds[len(seconds) // 2], 1),
        "create_p99_ms": round(1000 * seconds[int(len(seconds) * 0.99)], 1),
        "create_max_ms": round(1000 * seconds[-1], 1),
        "all_shipped_seconds_after_broker_back": round(drained_seconds, 1),
    }
    print(json.dumps(result))
    (layout.run_dir / "drills").mkdir(parents=True, exist_ok=True)
    (layout.run_dir / "drills" / f"{name}.json").write_text(json.dumps(result, indent=2))


@pytest.mark.timeout(480)
def test_broker_killed_for_20_s(stack: Stack, layout: Layout, carrier_admin: httpx.Client, audit: Audit) -> None:
    def kill() -> None:
        broker = stack.process("kafka")
        os.kill(broker.pid, signal.SIGKILL)
        broker.popen.wait()

    _drill(layout, carrier_admin, audit, name="broker-killed", break_broker=kill, mend_broker=stack.restart_kafka)


@pytest.mark.timeout(480)
def test_broker_paused_for_20_s(stack: Stack, layout: Layout, carrier_admin: httpx.Client, audit: Audit) -> None:
    broker = stack.process("kafka")

    _drill(
        layout,
        carrier_admin,
        audit,
        name="broker-paused",
        break_broker=lambda: os.kill(broker.pid, signal.SIGSTOP),
        mend_broker=lambda: os.kill(broker.pid, signal.SIGCONT),
    )
