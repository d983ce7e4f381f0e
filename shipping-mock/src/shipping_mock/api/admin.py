"""The admin API: fault settings, and a look at (or a reset of) what the carrier stored and saw.

Never affected by faults: tests and operators need it most when the carrier "misbehaves".
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shipping_mock.api.dependencies import CarrierStateDep
from shipping_mock.api.schemas import CarrierCallRecord, ShipmentCounts, ShipmentRecord
from shipping_mock.faults import FaultSettings
from shipping_mock.json_logging import log_event

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

OrderIdFilter = Annotated[str | None, Query(description="Only those of this order.")]


@router.get("/faults")
async def get_faults(state: CarrierStateDep) -> FaultSettings:
    """The fault settings in force."""
    return state.faults.settings


@router.put("/faults")
async def replace_faults(faults: FaultSettings, state: CarrierStateDep) -> FaultSettings:
    """Replace the fault settings; omitted fields take their defaults (no fault)."""
    state.faults.replace(faults)
    log_event(logger, logging.INFO, "faults_replaced", **faults.model_dump())
    return state.faults.settings


@router.delete("/faults")
async def reset_faults(state: CarrierStateDep) -> FaultSettings:
    """Back to no faults at all."""
    state.faults.reset()
    log_event(logger, logging.INFO, "faults_reset")
    return state.faults.settings


@router.get("/shipments")
async def list_shipments(state: CarrierStateDep, order_id: OrderIdFilter = None) -> list[ShipmentRecord]:
    """Every stored shipment (in creation order), or those of one order."""
    return [ShipmentRecord.of(shipment) for shipment in state.shipments.shipments(order_id)]


@router.get("/shipments/count")
async def count_shipments(state: CarrierStateDep) -> ShipmentCounts:
    """How many shipments are stored, and for how many distinct orders: a cheap progress check where the whole
    list would be large (a backlog drill's tens of thousands)."""
    return ShipmentCounts(shipments=len(state.shipments), orders=state.shipments.count_orders())


@router.delete("/shipments", status_code=HTTPStatus.NO_CONTENT)
async def clear_state(state: CarrierStateDep) -> Response:
    """Forget all shipments, idempotency keys and logged calls, and stop pending delivery reports."""
    await state.deliveries.cancel_all()
    state.shipments.clear()
    state.request_log.clear()
    log_event(logger, logging.INFO, "state_cleared")
    return Response(status_code=HTTPStatus.NO_CONTENT)


@router.get("/requests")
async def list_requests(state: CarrierStateDep, order_id: OrderIdFilter = None) -> list[CarrierCallRecord]:
    """Every carrier call that could change something (create, cancel), in arrival order; or those of one order."""
    return [CarrierCallRecord.of(call) for call in state.request_log.calls(order_id)]
