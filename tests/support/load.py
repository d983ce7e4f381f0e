"""A steady stream of order creations in the background, recording every answer and how long it took."""

import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.support.orders import new_order


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (a transport error or a timeout)
    seconds: float
    order_id: str | None


@dataclass
class OrderStream:
    """POSTs an order every `interval` seconds until stopped (a fixed arrival rate, not a closed loop)."""

    interval: float = 0.1
    timeout: float = 5.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _client: httpx.Client = field(
        default_factory=lambda: httpx.Client(
            base_url="http://127.0.0.1:8000", limits=httpx.Limits(max_connections=None, max_keepalive_connections=64)
        )
    )
    """One pool for every request: a client per request costs the load generator more CPU than the server spends."""

    def start(self) -> None:
        pacer = threading.Thread(target=self._pace, daemon=True)
        pacer.start()
        self._threads.append(pacer)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        self._client.close()
        return self.answers

    def _pace(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            sender = threading.Thread(target=self._create_one, daemon=True)
            sender.start()
            self._threads.append(sender)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _create_one(self) -> None:
        started = time.monotonic()
        try:
            response = self._client.post("/orders", json=new_order(), timeout=self.timeout)
        except httpx.HTTPError:
            self.answers.append(Answer(None, time.monotonic() - started, None))
            return
        order_id = response.json()["id"] if response.status_code == 201 else None
        self.answers.append(Answer(response.status_code, time.monotonic() - started, order_id))
