"""A create claimed, then crashed: the order service dies (SIGKILL) while creates with an Idempotency-Key are in
flight, some of them between claiming their key and storing their order (order-service handlers.py: the claim is an
insert-if-absent of the key's record, naming the order id it will create; the order and its event are stored by a
later transaction). After the restart every request that got no answer is sent again, same key, same body, until
it is answered 201: a key whose first request had stored its order replays it; a key claimed by a request that
died is answered 409 (in flight) until its claim is 10 s old, then the retry takes it over and creates the order
with the id the claim names; a key never claimed is created afresh. Whatever the case, exactly one order per key,
published once, shipped once (the audit).

The crash comes in the middle of a burst (a request every 5 ms, the sidecar serialising the store's writes), so
many creates are in flight at once. That at least one of them had claimed its key without storing its order is
checked, not assumed: such a key is answered 409 first, and the restarted service logs the takeover. A burst that
happened to leave none is run again (at most `ATTEMPTS` times).
"""

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from devstack.layout import Layout

from tests.support.audit import Audit
from tests.support.instances import ORDER_SERVICE, Instances, kill_listener
from tests.support.load import Answer, Load, OrderStream
from tests.support.polling import eventually

TAKEOVER_LOG_LINE = "taking over an abandoned idempotent create"
ATTEMPTS = 3
ANSWERED_BEFORE_THE_KILL = 20
RETRY_WITHIN_SECONDS = 60.0


def _until_accepted(load: Load, client: httpx.Client, first: Answer) -> list[Answer]:
    """Send `first`'s request again (same key, same body) until it is answered 201; every answer, in order."""
    assert first.idempotency_key is not None
    answers: list[Answer] = []

    def accepted() -> bool:
        answer = load.post(client, first.body, key=first.idempotency_key)
        answers.append(answer)
        return answer.status == 201

    eventually(accepted, timeout=RETRY_WITHIN_SECONDS, interval=1.0,  # the 409's Retry-After is 1 s
               what=f"key {first.idempotency_key} accepted")  # fmt: skip
    return answers


def _created_after(client: httpx.Client, order_id: str, moment: datetime) -> bool:
    order = client.get(f"http://127.0.0.1:8000/orders/{order_id}").json()
    return datetime.fromisoformat(order["created_at"]) >= moment


def _crash_mid_burst(instances: Instances, layout: Layout, attempt: int) -> tuple[OrderStream, datetime, int, int, int]:
    """One burst, the service killed in its middle, the service started again, every unanswered request sent again
    until accepted: the load, when the service was back, how many keys were answered 409 before being accepted, how
    many were taken over (answered as a replay with an order created after the crash), and how many takeovers the
    restarted service logged."""
    stream = OrderStream(interval=0.005, timeout=10, keyed=True)
    stream.start()
    try:
        eventually(lambda: len(stream.answers) >= ANSWERED_BEFORE_THE_KILL, timeout=30, what="the burst under way")
        in_flight = stream.in_flight()
        kill_listener(ORDER_SERVICE.app)
        killed_at = datetime.now(UTC)
    finally:
        stream.stop()
    # What a client sends again: a create that got no answer, or a 5xx (the service going down under it).
    unanswered = [answer for answer in stream.answers if answer.status is None or answer.status >= 500]
    print(f"\n[takeover {attempt}] killed with {in_flight} creates in flight; {len(unanswered)} got no answer or a 5xx")

    name = f"order-service-after-takeover-crash-{attempt}"
    log = layout.logs_dir / f"{name}.log"
    logged_before = log.read_text(errors="replace").count(TAKEOVER_LOG_LINE) if log.exists() else 0  # appended to
    instances.app(name, "order_service", "order-service", ORDER_SERVICE)
    back_at = datetime.now(UTC)
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(max_workers=16) as pool:
        retries = list(pool.map(lambda answer: _until_accepted(stream, client, answer), unanswered))
        held = sum(answers[0].status == 409 for answers in retries)
        taken_over = sum(
            answers[-1].replayed and _created_after(client, str(answers[-1].order_id), killed_at) for answers in retries
        )
    logged = log.read_text(errors="replace").count(TAKEOVER_LOG_LINE) - logged_before
    return stream, back_at, held, taken_over, logged


@pytest.mark.timeout(600)
def test_creates_claimed_then_crashed_are_taken_over_by_their_retries_one_order_per_key(
    instances: Instances, layout: Layout, carrier_admin: httpx.Client, audit: Audit
) -> None:
    loads: list[OrderStream] = []
    started = time.monotonic()
    for attempt in range(1, ATTEMPTS + 1):  # each attempt kills the instance the one before started
        stream, back_at, held, taken_over, logged = _crash_mid_burst(instances, layout, attempt)
        loads.append(stream)
        if taken_over:
            break

    orders_per_key: dict[str, set[str]] = defaultdict(set)
    for load in loads:
        for answer in load.answers:
            if answer.idempotency_key is not None and answer.order_id is not None:
                orders_per_key[answer.idempotency_key].add(answer.order_id)
    keys = {answer.idempotency_key for load in loads for answer in load.answers}
    assert {key: ids for key, ids in orders_per_key.items() if len(ids) != 1} == {}
    assert set(orders_per_key) == keys, "every key answered 201 in the end"
    notes = (
        f"{len(keys)} keys; in the last of {len(loads)} burst(s), {held} keys answered 409 after the restart, "
        f"{taken_over} taken over, {logged} takeovers logged ({time.monotonic() - started:.0f} s)"
    )
    print(f"\n[takeover] {notes}")
    audit.check("create claimed, then crashed (takeover)", loads, fault_ended_at=back_at, notes=notes)
    assert taken_over >= 1, "no burst left a claim without its order: the takeover was not exercised"
    assert logged == taken_over, f"{taken_over} keys taken over, {logged} takeovers logged"
