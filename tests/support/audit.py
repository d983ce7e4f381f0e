"""The audit every drill ends with: every request its load sent (tests/support/load.py), checked against what the
system holds afterwards, from outside and on the real stack.

What is checked, for a drill that started an `Audit` before its load and fault and calls `check` after them:

- **Each accepted order** (answered 201) reaches a final status (`delivered`, `failed` or `cancelled`: order-service
  `domain.py`) within the audit's deadline, read with `GET /orders/{id}`, with a coherent history: it starts
  `pending` at the order's `created_at`, lists each status once, in lifecycle order and in time order, ends with
  the order's status, and is one of the lifecycle's paths (`pending, processing, shipped, delivered`;
  `pending, processing, failed`; `pending[, processing], cancelled`); the order's `fulfillment` / `cancellation`
  say what the history says (a delivered order has its shipment, a failed one its reason). Times out of order
  in such a history are a warning (below).
- **The carrier** (the shipping mock's admin API, `GET /admin/shipments`, every shipment with its order id and
  status) holds at most one live (not `voided`) shipment per order id, whatever idempotency key created it; a
  shipped order (one whose history has `shipped`) exactly one, the one its `fulfillment.shipment_id` names; a
  `failed` or `cancelled` order that never shipped none.
- **A refused request created nothing**: a request none of whose sends was answered 201 but all were answered
  (4xx/5xx) has no `order.created.v1` on `order-events` for its customer id (each request has its own,
  tests/support/load.py), hence no order (every stored order's event is owed in the same transaction and the
  audit first waits until `/readyz` reports nothing owed) and no shipment. A request sent again (same body, same
  Idempotency-Key) counts as one request: all its 201s must name one order.
- **On Kafka** each accepted order has exactly one distinct `order.created.v1` CloudEvent id on `order-events` (the
  same id again is a redelivery, and fine), and each request created at most one order. The topic is read from
  where it ended when the audit started: no event of an order created later can be before that.
- **Dead letters**: nothing was added to `order-events-dlq` or `fulfillment-events-dlq` since the audit started,
  unless the drill says it sent poison.
- A request that got no answer (an error) may or may not have created an order; one it did create is audited like
  an accepted one (final status, history, shipments, one event id).

The row it returns (and adds to the session's report, tests/drills/conftest.py):

- `sent`: create requests sent (every POST /orders, a retry of a request included).
- `accepted`: distinct orders answered 201.
- `refused`: sends answered with another status (the service said no: 409, 422, 503, ...).
- `errors`: sends with no answer (connection refused or reset, timeout).
- `lost`: accepted orders that are not all there: `GET` does not find them, they reach no final status within the
  deadline, or they have no `order.created.v1` on Kafka.
- `duplicate_shipments`: live shipments at the carrier beyond the first, counted per order id, over every order the
  audit knows of (accepted, or created by a request without an answer or a refused one).
- `recover_seconds`: from the end of the fault (given by the drill: the moment the broken thing was whole again,
  a killed process answering again; for a fault nothing mends, such as a replica killed for good, the moment of
  the fault) until the system had caught up: the later of the first 201 answered to a request sent after the
  fault's end and the time the last order accepted before the fault's end reached its final status (that status'
  time in the order's history; a delivered order's includes the carrier's delivery delay, about 5 s). Never
  negative; None without a fault end.
- `run_seconds`: from the start of the audit (the drill's start) to the end of its check.
- `problems`: everything else the audit found wrong, one line each; a clean drill has none (and lost and
  duplicate_shipments 0).
- `warnings`: what is odd but breaks none of the guarantees above, reported without failing the drill: a history
  in lifecycle order whose times are not in time order. Seen when the carrier's answer to a create was lost (the
  fulfillment sidecar killed mid-call): fulfillment stamps `shipped` with the time it heard the answer on a later
  try, while `delivered` carries the carrier's delivery time, which can be earlier.
"""

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from order_contracts.names import (
    FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC,
    ORDER_EVENTS_DEAD_LETTER_TOPIC,
    ORDER_EVENTS_TOPIC,
)

from tests.support.kafka import end_offsets, values_since
from tests.support.load import ORDER_SERVICE_URL, Answer, Load
from tests.support.polling import eventually

CARRIER_URL = "http://127.0.0.1:8002"
FINAL_STATUSES = frozenset({"delivered", "failed", "cancelled"})
LIFECYCLE_PATHS = {
    "delivered": (("pending", "processing", "shipped", "delivered"),),
    "failed": (("pending", "processing", "failed"),),
    "cancelled": (("pending", "cancelled"), ("pending", "processing", "cancelled")),
}
"""The histories a final order may have (order-service domain.py: every status it went through, in rank order)."""
DEAD_LETTER_TOPICS = (ORDER_EVENTS_DEAD_LETTER_TOPIC, FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC)
MAX_PROBLEMS_SHOWN = 30


@dataclass(frozen=True)
class DrillRow:
    """One drill's line of the report (the module docstring defines each number)."""

    drill: str
    sent: int
    accepted: int
    refused: int
    errors: int
    lost: int
    duplicate_shipments: int
    recover_seconds: float | None
    run_seconds: float
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """What the audit saw that is odd but breaks no guarantee (reported, does not fail the drill)."""
    notes: str = ""
    """What else the drill measured, for people (not audited)."""

    @property
    def clean(self) -> bool:
        return not self.problems and self.lost == 0 and self.duplicate_shipments == 0

    def line(self) -> str:
        recover = "-" if self.recover_seconds is None else f"{self.recover_seconds:.1f} s"
        verdict = "clean" if self.clean else f"{len(self.problems)} problem(s)"
        return (
            f"[audit] {self.drill}: sent {self.sent}, accepted {self.accepted}, refused {self.refused}, errors "
            f"{self.errors}, lost {self.lost}, duplicate shipments {self.duplicate_shipments}, time to recover "
            f"{recover}, run {self.run_seconds:.0f} s: {verdict}"
        )


@dataclass
class _Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def _parse(value: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(value)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def history_problems(order: dict[str, Any]) -> list[str]:
    """What is incoherent about a final order's history (empty when nothing)."""
    order_id, status = order["id"], order["status"]
    history = order["history"]
    statuses = tuple(entry["status"] for entry in history)
    found = []
    if statuses not in LIFECYCLE_PATHS.get(status, ()):
        found.append(f"order {order_id} is {status} with history {list(statuses)}")
    if history and _time(history[0]["at"]) != _time(order["created_at"]):
        found.append(f"order {order_id}: history starts at {history[0]['at']}, created at {order['created_at']}")
    fulfillment = order.get("fulfillment") or {}
    if "processing" in statuses and not fulfillment.get("picked_up_at"):
        found.append(f"order {order_id}: processing without picked_up_at")
    if "shipped" in statuses and not (fulfillment.get("shipment_id") and fulfillment.get("shipped_at")):
        found.append(f"order {order_id}: shipped without its shipment in fulfillment {fulfillment}")
    if status == "delivered" and not fulfillment.get("delivered_at"):
        found.append(f"order {order_id}: delivered without delivered_at")
    if status == "failed" and not fulfillment.get("failure_reason"):
        found.append(f"order {order_id}: failed without a failure_reason")
    if status == "cancelled" and not order.get("cancellation"):
        found.append(f"order {order_id}: cancelled without its cancellation")
    return found


def history_time_warnings(order: dict[str, Any]) -> list[str]:
    """Where a history in lifecycle order is not in time order (a warning, not a problem: see the module doc)."""
    history = order["history"]
    times = [_time(entry["at"]) for entry in history]
    if times == sorted(times):
        return []
    return [f"order {order['id']}: history in lifecycle order but not in time order: "
            + ", ".join(f"{entry['status']} {entry['at']}" for entry in history)]  # fmt: skip


class Audit:
    """Started before a drill's load and fault (it notes where the topics end), checked after them."""

    def __init__(self, rows: list[DrillRow] | None = None) -> None:
        self.rows = rows if rows is not None else []
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self._order_events_from = end_offsets(ORDER_EVENTS_TOPIC)
        self._dead_letters_from = {topic: end_offsets(topic) for topic in DEAD_LETTER_TOPICS}

    def check(
        self,
        name: str,
        loads: Load | Sequence[Load],
        *,
        fault_ended_at: datetime | None,
        poison_sent: bool = False,
        final_within: float = 180.0,
        notes: str = "",
    ) -> DrillRow:
        """Audit every request `loads` sent; record the row, print it, and fail the drill unless it is clean."""
        answers = [answer for load in ([loads] if isinstance(loads, Load) else loads) for answer in load.answers]
        findings = _Findings()
        with httpx.Client(timeout=10, limits=httpx.Limits(max_connections=16)) as client:
            self._wait_until_nothing_owed(client, findings)
            created_ids, created_by_customer = self._orders_created_on_kafka()
            audited, accepted = self._requests(answers, created_by_customer, findings)
            for order_id in sorted(accepted):
                if order_id not in created_ids:
                    findings.lost.add(order_id)
                    findings.add(f"accepted order {order_id} has no order.created.v1 on {ORDER_EVENTS_TOPIC}")
            for order_id in sorted(audited):
                if len(created_ids.get(order_id, set())) > 1:
                    findings.add(f"order {order_id} has order.created.v1 ids {sorted(created_ids[order_id])}")
            orders = self._final_orders(client, audited, accepted, findings, within=final_within)
            for order in orders.values():
                if order["status"] in FINAL_STATUSES:
                    findings.problems.extend(history_problems(order))
                    findings.warnings.extend(history_time_warnings(order))
            duplicates = self._shipments(client, audited, orders, findings)
        self._dead_letters(findings, poison_sent=poison_sent)
        row = DrillRow(
            drill=name,
            sent=len(answers),
            accepted=len(accepted),
            refused=sum(answer.status is not None and answer.status != 201 for answer in answers),
            errors=sum(answer.status is None for answer in answers),
            lost=len(findings.lost),
            duplicate_shipments=duplicates,
            recover_seconds=_recover_seconds(answers, orders.values(), fault_ended_at),
            run_seconds=time.monotonic() - self.started,
            problems=tuple(findings.problems),
            warnings=tuple(findings.warnings),
            notes=notes,
        )
        self.rows.append(row)
        print("\n" + row.line())
        for warning in row.warnings[:MAX_PROBLEMS_SHOWN]:
            print(f"  [warning] {warning}")
        shown = "\n".join(f"  - {problem}" for problem in row.problems[:MAX_PROBLEMS_SHOWN])
        more = len(row.problems) - MAX_PROBLEMS_SHOWN
        assert row.clean, f"{row.line()}\n{shown}" + (f"\n  ... and {more} more" if more > 0 else "")
        return row

    def _wait_until_nothing_owed(self, client: httpx.Client, findings: _Findings) -> None:
        """Until the order service's outbox is empty: every stored order's order.created.v1 is on Kafka."""

        def nothing_owed() -> bool:
            try:
                readiness = client.get(f"{ORDER_SERVICE_URL}/readyz").json()
            except (httpx.HTTPError, ValueError):
                return False
            return bool(readiness.get("events_owed") == 0)

        try:
            eventually(nothing_owed, timeout=120, interval=0.5, what="the order service to owe no event")
        except AssertionError as error:
            findings.add(str(error))

    def _orders_created_on_kafka(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """The order.created.v1 CloudEvent ids per order id, and the order ids per customer id, since the start."""
        ids: dict[str, set[str]] = defaultdict(set)
        by_customer: dict[str, set[str]] = defaultdict(set)
        for value in values_since(ORDER_EVENTS_TOPIC, self._order_events_from):
            event = _parse(value)
            if event is None or event.get("type") != "order.created.v1":
                continue
            order_id = str(event.get("subject"))
            ids[order_id].add(str(event.get("id")))
            customer = ((event.get("data") or {}).get("customer") or {}).get("id")
            if customer is not None:
                by_customer[str(customer)].add(order_id)
        return ids, by_customer

    def _requests(
        self, answers: Sequence[Answer], created_by_customer: dict[str, set[str]], findings: _Findings
    ) -> tuple[set[str], set[str]]:
        """Every request's outcome against what it created: the orders to audit, and those accepted."""
        requests: dict[str, list[Answer]] = defaultdict(list)
        for answer in answers:
            requests[answer.customer_id].append(answer)
        audited: set[str] = set()
        accepted: set[str] = set()
        for customer_id, sends in requests.items():
            answered = {answer.order_id for answer in sends if answer.status == 201 and answer.order_id}
            created = created_by_customer.get(customer_id, set())
            key = sends[0].idempotency_key
            if len(answered) > 1:
                findings.add(f"request {customer_id} (key {key}) answered 201 with orders {sorted(answered)}")
            if len(created) > 1:
                findings.add(f"request {customer_id} (key {key}) created orders {sorted(created)}")
            if answered:
                stray = created - answered
                if stray:
                    findings.add(f"request {customer_id} answered {sorted(answered)} but created {sorted(stray)}")
            elif all(answer.status is not None for answer in sends) and created:
                statuses = [answer.status for answer in sends]
                findings.add(f"refused request {customer_id} ({statuses}, key {key}) created orders {sorted(created)}")
            accepted |= answered
            audited |= answered | created
        return audited, accepted

    def _final_orders(
        self, client: httpx.Client, order_ids: set[str], accepted: set[str], findings: _Findings, *, within: float
    ) -> dict[str, dict[str, Any]]:
        """Every order as last read, once all are final or the deadline passed."""
        orders: dict[str, dict[str, Any]] = {}
        missing: set[str] = set()
        pending = set(order_ids)

        def read(order_id: str) -> tuple[str, int | None, dict[str, Any] | None]:
            try:
                response = client.get(f"{ORDER_SERVICE_URL}/orders/{order_id}")
            except httpx.HTTPError:
                return order_id, None, None
            return order_id, response.status_code, response.json() if response.status_code == 200 else None

        def all_final() -> bool:
            with ThreadPoolExecutor(max_workers=8) as pool:
                for order_id, status, order in pool.map(read, sorted(pending)):
                    if status == 404:
                        missing.add(order_id)
                    elif order is not None:
                        missing.discard(order_id)
                        orders[order_id] = order
                        if order["status"] in FINAL_STATUSES:
                            pending.discard(order_id)
            return not pending

        try:
            eventually(all_final, timeout=within, interval=1, what=f"{len(order_ids)} orders final")
        except AssertionError:
            statuses = Counter(orders[order_id]["status"] if order_id in orders else "unread" for order_id in pending)
            findings.add(f"{len(pending)} orders not final within {within:.0f} s: {dict(statuses)}")
            for order_id in sorted(pending)[:MAX_PROBLEMS_SHOWN]:
                findings.add(f"order {order_id} not final: {orders.get(order_id, {}).get('status', 'unread')}")
        for order_id in sorted(missing):
            findings.add(f"order {order_id} not found (404)")
        findings.lost |= (pending | missing) & accepted
        return orders

    def _shipments(
        self, client: httpx.Client, order_ids: set[str], orders: dict[str, dict[str, Any]], findings: _Findings
    ) -> int:
        """Live shipments per order id at the carrier against each order; the number of duplicates."""
        live: dict[str, list[str]] = defaultdict(list)
        for shipment in client.get(f"{CARRIER_URL}/admin/shipments", timeout=60).json():
            if shipment["order_id"] in order_ids and shipment["status"] != "voided":
                live[shipment["order_id"]].append(shipment["shipment_id"])
        duplicates = 0
        for order_id in sorted(order_ids):
            shipments = live.get(order_id, [])
            if len(shipments) > 1:
                duplicates += len(shipments) - 1
                findings.add(f"order {order_id} has {len(shipments)} live shipments: {shipments}")
            order = orders.get(order_id)
            if order is None:
                continue
            statuses = [entry["status"] for entry in order["history"]]
            shipment_id = (order.get("fulfillment") or {}).get("shipment_id")
            if "shipped" in statuses and (not shipments or shipment_id not in shipments):
                findings.add(f"order {order_id} shipped as {shipment_id}, live at the carrier: {shipments}")
            if "shipped" not in statuses and order["status"] in ("failed", "cancelled") and shipments:
                findings.add(f"order {order_id} {order['status']} with live shipments {shipments}")
        return duplicates

    def _dead_letters(self, findings: _Findings, *, poison_sent: bool) -> None:
        for topic, since in self._dead_letters_from.items():
            added = values_since(topic, since)
            if added and not poison_sent:
                findings.add(f"{len(added)} dead letters on {topic}, e.g. {added[0][:300]!r}")


def _recover_seconds(
    answers: Sequence[Answer], orders: Iterable[dict[str, Any]], fault_ended_at: datetime | None
) -> float | None:
    if fault_ended_at is None:
        return None
    caught_up = fault_ended_at
    answered_after = [answer.sent_at.timestamp() + answer.seconds for answer in answers
                      if answer.status == 201 and answer.sent_at >= fault_ended_at]  # fmt: skip
    if answered_after:
        caught_up = max(caught_up, datetime.fromtimestamp(min(answered_after), UTC))
    for order in orders:
        if order["status"] in FINAL_STATUSES and _time(order["created_at"]) <= fault_ended_at:
            caught_up = max(caught_up, _time(order["history"][-1]["at"]))
    return (caught_up - fault_ended_at).total_seconds()
