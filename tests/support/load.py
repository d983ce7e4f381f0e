"""Order creations a drill sends, every one of them recorded: what was sent (its body, its Idempotency-Key, if any)
and what came back (status, order id, how long it took). `tests/support/audit.py` audits a drill from this record.

Each request gets a customer id of its own (`drill-<load tag>-<n>`; a retry of the same request reuses its body and
so its customer id): `order.created.v1` carries the customer, which is how the audit finds, on Kafka, what a
request created even when it never heard the answer.
"""

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.support.orders import new_order

ORDER_SERVICE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Answer:
    """One create a drill sent and what came of it."""

    status: int | None
    """The HTTP status; None: no answer (a transport error or a timeout)."""
    seconds: float
    order_id: str | None
    """The order's id when the answer was 201."""
    customer_id: str = ""
    """Unique per request (retries of a request reuse it): how the audit finds what the request created."""
    idempotency_key: str | None = None
    body: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    replayed: bool = False
    """The answer carried `Idempotent-Replayed: true`."""
    error: str | None = None
    """What went wrong when there was no answer."""
    transport_error: bool = False
    """No answer because of the connection (refused, reset, closed mid-request, timed out): httpx.TransportError."""


@dataclass
class Load:
    """The record of every create a drill sends (thread-safe: the stream's senders append from their threads)."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    answers: list[Answer] = field(default_factory=list)
    _numbers: "itertools.count[int]" = field(default_factory=itertools.count)

    def new_body(self) -> dict[str, Any]:
        """A valid order with a customer id no other request of any load has."""
        body = new_order()
        body["customer"] = {**body["customer"], "id": f"drill-{self.tag}-{next(self._numbers)}"}
        return body

    def new_key(self) -> str:
        return f"drill-{self.tag}-key-{uuid.uuid4().hex}"

    def post(
        self, client: httpx.Client, body: dict[str, Any], *, key: str | None = None, timeout: float = 10.0
    ) -> Answer:
        """POST /orders with `body` (and `key` as its Idempotency-Key) and record what came of it."""
        started = time.monotonic()
        sent_at = datetime.now(UTC)
        headers = {"Idempotency-Key": key} if key is not None else {}
        customer_id = str(body["customer"]["id"])
        try:
            response = client.post(f"{ORDER_SERVICE_URL}/orders", json=body, headers=headers, timeout=timeout)
        except httpx.HTTPError as error:
            answer = Answer(None, time.monotonic() - started, None, customer_id, key, body, sent_at,
                            error=f"{type(error).__name__}: {error}",
                            transport_error=isinstance(error, httpx.TransportError))  # fmt: skip
        else:
            order_id = str(response.json()["id"]) if response.status_code == 201 else None
            answer = Answer(response.status_code, time.monotonic() - started, order_id, customer_id, key, body,
                            sent_at, replayed=response.headers.get("idempotent-replayed") == "true")  # fmt: skip
        self.answers.append(answer)
        return answer

    def create(self, client: httpx.Client, *, keyed: bool = False, timeout: float = 10.0) -> Answer:
        """A new order (with a fresh Idempotency-Key when `keyed`), recorded."""
        return self.post(client, self.new_body(), key=self.new_key() if keyed else None, timeout=timeout)

    def created(self, client: httpx.Client, *, keyed: bool = False) -> str:
        """A new order that must be accepted: its id."""
        answer = self.create(client, keyed=keyed)
        assert answer.status == 201, answer
        assert answer.order_id is not None, answer
        return answer.order_id


@dataclass
class OrderStream(Load):
    """POSTs an order every `interval` seconds from a thread per request until stopped (a fixed arrival rate, not a
    closed loop), each with an Idempotency-Key of its own when `keyed`."""

    interval: float = 0.1
    timeout: float = 5.0
    keyed: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _client: httpx.Client = field(
        default_factory=lambda: httpx.Client(limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
    )
    """One pool for every request: a client per request costs the load generator more CPU than the server spends."""

    def start(self) -> None:
        pacer = threading.Thread(target=self._pace, daemon=True)
        pacer.start()
        self._threads.append(pacer)

    def stop(self) -> list[Answer]:
        """Stop sending, wait for the answers of what was sent, and return every answer."""
        self._stop.set()
        pacer, *_ = self._threads
        pacer.join(timeout=self.timeout + 5)
        for thread in self._threads[1:]:  # read after the pacer is done: the requests it sent last are joined too
            thread.join(timeout=self.timeout + 5)
        self._client.close()
        return self.answers

    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return sum(thread.is_alive() for thread in self._threads[1:])

    def _pace(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            sender = threading.Thread(target=self._create_one, daemon=True)
            sender.start()
            self._threads.append(sender)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _create_one(self) -> None:
        self.create(self._client, keyed=self.keyed, timeout=self.timeout)
