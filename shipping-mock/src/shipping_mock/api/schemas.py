"""What the API answers: shipments as the carrier shows them, and the admin views of the state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from shipping_mock.models import LineItem, Recipient, ShipmentStatus
from shipping_mock.store import CarrierCall, Shipment


class ShipmentView(BaseModel):
    """A shipment as the carrier API returns it."""

    shipment_id: str
    order_id: str
    carrier: str
    tracking_number: str
    status: ShipmentStatus
    estimated_delivery: date

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentView:
        return cls(
            shipment_id=shipment.shipment_id,
            order_id=shipment.order_id,
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            status=shipment.status,
            estimated_delivery=shipment.estimated_delivery,
        )


class ShipmentCounts(BaseModel):
    """How many shipments the carrier holds, and for how many distinct orders (admin API)."""

    shipments: int
    orders: int


class ShipmentRecord(ShipmentView):
    """A shipment with everything the carrier stored about it (admin API)."""

    idempotency_key: str
    recipient: Recipient
    items: list[LineItem]
    created_at: datetime
    voided_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, shipment: Shipment) -> ShipmentRecord:
        return cls(
            **ShipmentView.of(shipment).model_dump(),
            idempotency_key=shipment.idempotency_key,
            recipient=shipment.recipient,
            items=list(shipment.items),
            created_at=shipment.created_at,
            voided_at=shipment.voided_at,
            delivered_at=shipment.delivered_at,
        )


class CarrierCallRecord(BaseModel):
    """One carrier call from the request log (admin API); ``outcome`` is ``None`` while in progress."""

    call_id: int
    method: str
    path: str
    order_id: str | None
    idempotency_key: str | None
    arrived_at: datetime
    held_ms: float | None
    outcome: int | Literal["abandoned"] | None
    finished_at: datetime | None

    @classmethod
    def of(cls, call: CarrierCall) -> CarrierCallRecord:
        return cls(
            call_id=call.call_id,
            method=call.method,
            path=call.path,
            order_id=call.order_id,
            idempotency_key=call.idempotency_key,
            arrived_at=call.arrived_at,
            held_ms=call.held_ms,
            outcome=call.outcome,
            finished_at=call.finished_at,
        )


class Health(BaseModel):
    status: Literal["ok"] = "ok"
