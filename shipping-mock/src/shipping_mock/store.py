"""In-memory state of the carrier: shipments, the answer given to each idempotency key, and the request log.

Everything lives in process memory and is lost on restart (a mock, not a carrier). All
mutations are synchronous, so within one event loop a check-then-store sequence that does
not ``await`` in between is atomic: two concurrent calls with the same key cannot both create.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from shipping_mock.models import LineItem, Recipient, Rejection, ShipmentRequest, ShipmentStatus

ABANDONED: Literal["abandoned"] = "abandoned"
ESTIMATED_TRANSIT_DAYS = 3
# S10 (UPU) style tracking numbers; "ZZ" is the user-assigned ISO 3166 code, apt for a fictional carrier.
_TRACKING_PREFIX = "AP"
_TRACKING_SUFFIX = "ZZ"
_S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)


def utc_now() -> datetime:
    return datetime.now(UTC)


def s10_check_digit(serial: str) -> int:
    remainder = 11 - sum(int(digit) * weight for digit, weight in zip(serial, _S10_WEIGHTS, strict=True)) % 11
    if remainder == 10:
        return 0
    if remainder == 11:
        return 5
    return remainder


def new_tracking_number() -> str:
    serial = f"{secrets.randbelow(10**8):08d}"
    return f"{_TRACKING_PREFIX}{serial}{s10_check_digit(serial)}{_TRACKING_SUFFIX}"


def new_shipment_id() -> str:
    return f"shp_{secrets.token_hex(12)}"


@dataclass(eq=False, slots=True)
class Shipment:
    """One shipment; ``status_lock`` serialises status changes (a cancel against a delivery report)."""

    shipment_id: str
    order_id: str
    idempotency_key: str
    carrier: str
    tracking_number: str
    recipient: Recipient
    items: tuple[LineItem, ...]
    created_at: datetime
    estimated_delivery: date
    status: ShipmentStatus = ShipmentStatus.LABEL_CREATED
    voided_at: datetime | None = None
    delivered_at: datetime | None = None
    status_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def void(self) -> None:
        """Void the label; voiding a voided shipment changes nothing. A delivered one cannot be voided."""
        if self.status is ShipmentStatus.DELIVERED:
            raise ValueError(f"shipment {self.shipment_id} is already delivered")
        if self.status is ShipmentStatus.LABEL_CREATED:
            self.status = ShipmentStatus.VOIDED
            self.voided_at = utc_now()

    def mark_delivered(self, delivered_at: datetime) -> None:
        if self.status is not ShipmentStatus.LABEL_CREATED:
            raise ValueError(f"shipment {self.shipment_id} is {self.status}, it cannot be delivered")
        self.status = ShipmentStatus.DELIVERED
        self.delivered_at = delivered_at


@dataclass(frozen=True, slots=True)
class RememberedRejection:
    """A rejection given to an idempotency key (kept so that the key gets the same answer again)."""

    request: ShipmentRequest
    rejection: Rejection


class ShipmentStore:
    """Shipments by id, and what each idempotency key was answered."""

    def __init__(self) -> None:
        self._shipments: dict[str, Shipment] = {}
        self._answers_by_key: dict[str, Shipment | RememberedRejection] = {}

    def create(
        self, *, order_id: str, idempotency_key: str, carrier: str, recipient: Recipient, items: tuple[LineItem, ...]
    ) -> Shipment:
        if idempotency_key in self._answers_by_key:
            raise ValueError(f"idempotency key {idempotency_key!r} was already answered")
        created_at = utc_now()
        shipment = Shipment(
            shipment_id=new_shipment_id(),
            order_id=order_id,
            idempotency_key=idempotency_key,
            carrier=carrier,
            tracking_number=new_tracking_number(),
            recipient=recipient,
            items=items,
            created_at=created_at,
            estimated_delivery=(created_at + timedelta(days=ESTIMATED_TRANSIT_DAYS)).date(),
        )
        self._shipments[shipment.shipment_id] = shipment
        self._answers_by_key[idempotency_key] = shipment
        return shipment

    def remember_rejection(self, idempotency_key: str, request: ShipmentRequest, rejection: Rejection) -> None:
        if idempotency_key in self._answers_by_key:
            raise ValueError(f"idempotency key {idempotency_key!r} was already answered")
        self._answers_by_key[idempotency_key] = RememberedRejection(request=request, rejection=rejection)

    def answer_for_key(self, idempotency_key: str) -> Shipment | RememberedRejection | None:
        return self._answers_by_key.get(idempotency_key)

    def get(self, shipment_id: str) -> Shipment | None:
        return self._shipments.get(shipment_id)

    def shipments(self, order_id: str | None = None) -> list[Shipment]:
        """All shipments in creation order, or those of one order."""
        return [s for s in self._shipments.values() if order_id is None or s.order_id == order_id]

    def count_orders(self) -> int:
        """Distinct orders with at least one shipment."""
        return len({shipment.order_id for shipment in self._shipments.values()})

    def __len__(self) -> int:
        return len(self._shipments)

    def clear(self) -> None:
        self._shipments.clear()
        self._answers_by_key.clear()


@dataclass(eq=False, slots=True)
class CarrierCall:
    """One carrier call as the carrier saw it: when it came, how long its answer was held, how it ended.

    ``outcome`` is the status code answered, ``"abandoned"`` if the caller went away before the
    answer, or ``None`` while the call is still in progress.
    """

    call_id: int
    method: str
    path: str
    idempotency_key: str | None
    arrived_at: datetime
    order_id: str | None = None
    held_ms: float | None = None
    outcome: int | Literal["abandoned"] | None = None
    finished_at: datetime | None = None
    _hold_started: float | None = field(default=None, repr=False)

    def start_hold(self) -> None:
        self._hold_started = time.monotonic()

    def finish(self, outcome: int | Literal["abandoned"]) -> None:
        if self.outcome is not None:
            return
        self.held_ms = 0.0 if self._hold_started is None else round((time.monotonic() - self._hold_started) * 1000, 1)
        self.outcome = outcome
        self.finished_at = utc_now()


class RequestLog:
    """Every carrier call that can change something (``POST /shipments`` and cancel), in arrival order."""

    def __init__(self) -> None:
        self._calls: list[CarrierCall] = []
        self._ids = itertools.count(1)

    def record_arrival(self, *, method: str, path: str, idempotency_key: str | None) -> CarrierCall:
        call = CarrierCall(
            call_id=next(self._ids), method=method, path=path, idempotency_key=idempotency_key, arrived_at=utc_now()
        )
        self._calls.append(call)
        return call

    def calls(self, order_id: str | None = None) -> list[CarrierCall]:
        return [c for c in self._calls if order_id is None or c.order_id == order_id]

    def clear(self) -> None:
        self._calls.clear()
