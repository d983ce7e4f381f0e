"""The carrier API: create, read, find (by order) and cancel (void) shipments, with the faults applied.

Order of checks for ``POST /shipments`` (each call rolls its fault dice once, on arrival):

1. ``down``                         -> 503 ``carrier-unavailable``.
2. no / empty / >255-char ``Idempotency-Key`` -> 400 ``missing-idempotency-key``.
3. body not a valid shipment request -> 422 ``invalid-request`` (with ``errors``).
4. ``error_rate`` fired             -> 503 ``temporary-failure``; nothing is stored.
5. key seen before                  -> the answer it got then: 200 + the shipment (as it is now),
                                       or the same 422 rejection. Never a second shipment.
6. address refused by the policy, or ``reject_rate`` fired -> 422 ``address-rejected`` with
   ``reason``; the rejection is remembered for the key.
7. otherwise the shipment is stored -> 201.

``POST /shipments/{id}/cancel``: ``down`` -> 503, ``error_rate`` -> 503 (nothing changed),
unknown -> 404, delivered -> 409, otherwise voided -> 200 (again -> 200, still voided).

Steps 5-7 and a processed cancel are subject to ``timeout_rate``: the change is made and
then the answer, whatever it is, is withheld for ``hold_seconds`` (the caller usually gives
up first: the carrier did it, the caller never heard). ``latency_ms`` delays every carrier
answer, errors included. ``GET /shipments/{id}`` and ``GET /shipments?order_id=`` are subject to
``down`` and ``latency_ms`` only, so a caller can find out what happened to an ambiguous call (even
one whose create answer it never heard: search by its own order reference) while the carrier is up.
A missing or blank ``order_id`` is refused (422) as request validation, before any fault applies.

Calls that can change something are written to the request log (reads are not); a caller that goes away
before its answer (client disconnect seen by the server, or the handler being cancelled)
is recorded as ``abandoned``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import StringConstraints, ValidationError
from starlette.types import Receive

from shipping_mock.address_policy import FAULT_REJECTION, rejection_for
from shipping_mock.api import problems
from shipping_mock.api.dependencies import CarrierStateDep
from shipping_mock.api.schemas import ShipmentView
from shipping_mock.faults import FaultRoll
from shipping_mock.json_logging import log_event
from shipping_mock.models import ShipmentRequest, ShipmentStatus
from shipping_mock.state import CarrierState
from shipping_mock.store import ABANDONED, CarrierCall, RememberedRejection, Shipment

logger = logging.getLogger(__name__)

router = APIRouter(tags=["carrier"])

MAX_IDEMPOTENCY_KEY_LENGTH = 255

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Unique per intended shipment; a retry must reuse it."),
]

OrderIdQuery = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    Query(description="The caller's own order reference, as sent in `order_id` on create."),
]

_PROBLEM: dict[str, Any] = {"content": {problems.PROBLEM_CONTENT_TYPE: {}}}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the carrier will answer, and whether the timeout fault withholds it."""

    response: Response
    withheld: bool = False


@router.post(
    "/shipments",
    status_code=HTTPStatus.CREATED,
    response_model=ShipmentView,
    responses={
        200: {"model": ShipmentView, "description": "Replay: this Idempotency-Key already created this shipment."},
        400: {**_PROBLEM, "description": "Idempotency-Key missing."},
        422: {**_PROBLEM, "description": "Invalid body, or an address the carrier will not ship to (`reason`)."},
        503: {**_PROBLEM, "description": "Carrier down or temporary failure; nothing was stored."},
    },
)
async def create_shipment(
    request: Request, state: CarrierStateDep, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Create a shipment (buy a label) for an order; idempotent per ``Idempotency-Key``."""
    call = state.request_log.record_arrival(method="POST", path=request.url.path, idempotency_key=idempotency_key)
    with _abandoned_if_cancelled(call):
        roll = state.faults.roll()
        body = await request.body()
        call.order_id = _order_id_in(body)
        answer = _create(state, roll, idempotency_key, body)
        return await _send_answer(request, state, roll, answer, call)


@router.get(
    "/shipments/{shipment_id}",
    response_model=ShipmentView,
    responses={404: _PROBLEM, 503: _PROBLEM},
)
async def get_shipment(shipment_id: str, request: Request, state: CarrierStateDep) -> Response:
    """The shipment as the carrier knows it now."""
    roll = _read_roll(state)
    shipment = state.shipments.get(shipment_id)
    if roll.down:
        answer = Answer(problems.carrier_down())
    elif shipment is None:
        answer = Answer(problems.shipment_not_found(shipment_id))
    else:
        answer = Answer(_shipment_response(shipment, HTTPStatus.OK))
    return await _send_answer(request, state, roll, answer, call=None)


@router.get(
    "/shipments",
    response_model=list[ShipmentView],
    responses={
        422: {**_PROBLEM, "description": "`order_id` missing or blank."},
        503: {**_PROBLEM, "description": "Carrier down."},
    },
)
async def find_shipments(order_id: OrderIdQuery, request: Request, state: CarrierStateDep) -> Response:
    """The shipments created for an order reference, oldest first (voided ones included); ``[]`` if none."""
    roll = _read_roll(state)
    if roll.down:
        answer = Answer(problems.carrier_down())
    else:
        views = [ShipmentView.of(shipment).model_dump(mode="json") for shipment in state.shipments.shipments(order_id)]
        answer = Answer(JSONResponse(views, status_code=HTTPStatus.OK))
    return await _send_answer(request, state, roll, answer, call=None)


@router.post(
    "/shipments/{shipment_id}/cancel",
    response_model=ShipmentView,
    responses={404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM},
)
async def cancel_shipment(
    shipment_id: str, request: Request, state: CarrierStateDep, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    """Void the shipment's label; voiding again answers the voided shipment again."""
    call = state.request_log.record_arrival(method="POST", path=request.url.path, idempotency_key=idempotency_key)
    with _abandoned_if_cancelled(call):
        roll = state.faults.roll()
        shipment = state.shipments.get(shipment_id)
        call.order_id = shipment.order_id if shipment is not None else None
        answer = await _cancel(state, roll, shipment_id, shipment)
        return await _send_answer(request, state, roll, answer, call)


def _read_roll(state: CarrierState) -> FaultRoll:
    """The faults a read is subject to: ``down`` and ``latency_ms`` only (no dice are rolled)."""
    settings = state.faults.settings
    return FaultRoll(down=settings.down, latency_ms=settings.latency_ms, error=False, reject=False, timeout=False)


def _create(state: CarrierState, roll: FaultRoll, idempotency_key: str | None, body: bytes) -> Answer:
    """Decide and apply the outcome of a create call. Synchronous on purpose: no other call interleaves."""
    if roll.down:
        return Answer(problems.carrier_down())
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        return Answer(problems.missing_idempotency_key())
    try:
        shipment_request = ShipmentRequest.model_validate_json(body)
    except ValidationError as error:
        return Answer(problems.invalid_request(error))
    if roll.error:
        _log_fault("error", idempotency_key=idempotency_key, order_id=shipment_request.order_id)
        return Answer(problems.temporary_failure())
    return _create_for_key(state, roll, idempotency_key, shipment_request)


def _create_for_key(
    state: CarrierState, roll: FaultRoll, idempotency_key: str, shipment_request: ShipmentRequest
) -> Answer:
    """Steps 5-7: replay what the key got before, reject it (and remember), or store a new shipment."""
    previous = state.shipments.answer_for_key(idempotency_key)
    if previous is not None:
        return Answer(_replay(previous, shipment_request, idempotency_key), withheld=roll.timeout)

    rejection = rejection_for(shipment_request.recipient.address)
    if rejection is None and roll.reject:
        _log_fault("reject", idempotency_key=idempotency_key, order_id=shipment_request.order_id)
        rejection = FAULT_REJECTION
    if rejection is not None:
        state.shipments.remember_rejection(idempotency_key, shipment_request, rejection)
        log_event(
            logger,
            logging.INFO,
            "shipment_rejected",
            order_id=shipment_request.order_id,
            idempotency_key=idempotency_key,
            reason=rejection.reason,
        )
        return Answer(problems.address_rejected(rejection), withheld=roll.timeout)

    shipment = state.shipments.create(
        order_id=shipment_request.order_id,
        idempotency_key=idempotency_key,
        carrier=state.settings.carrier_name,
        recipient=shipment_request.recipient,
        items=tuple(shipment_request.items),
    )
    state.deliveries.schedule(shipment)
    log_event(
        logger,
        logging.INFO,
        "shipment_created",
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        idempotency_key=idempotency_key,
        tracking_number=shipment.tracking_number,
    )
    return Answer(_shipment_response(shipment, HTTPStatus.CREATED), withheld=roll.timeout)


def _replay(previous: Shipment | RememberedRejection, request: ShipmentRequest, idempotency_key: str) -> Response:
    """The answer a key got before (the shipment as it is now, or the same rejection)."""
    if isinstance(previous, RememberedRejection):
        same_request = previous.request == request
        response: Response = problems.address_rejected(previous.rejection)
        order_id = previous.request.order_id
    else:
        same_request = (previous.order_id, previous.recipient, previous.items) == (
            request.order_id,
            request.recipient,
            tuple(request.items),
        )
        response = _shipment_response(previous, HTTPStatus.OK)
        order_id = previous.order_id
    log_event(
        logger,
        logging.INFO if same_request else logging.WARNING,
        "idempotent_replay" if same_request else "idempotent_replay_with_different_body",
        order_id=order_id,
        idempotency_key=idempotency_key,
        status_code=response.status_code,
    )
    return response


async def _cancel(state: CarrierState, roll: FaultRoll, shipment_id: str, shipment: Shipment | None) -> Answer:
    if roll.down:
        return Answer(problems.carrier_down())
    if roll.error:
        _log_fault("error", shipment_id=shipment_id)
        return Answer(problems.temporary_failure())
    if shipment is None:
        return Answer(problems.shipment_not_found(shipment_id), withheld=roll.timeout)
    async with shipment.status_lock:
        if shipment.status is ShipmentStatus.DELIVERED:
            return Answer(problems.shipment_already_delivered(shipment_id), withheld=roll.timeout)
        if shipment.status is ShipmentStatus.LABEL_CREATED:
            shipment.void()
            state.deliveries.cancel(shipment_id)
            log_event(logger, logging.INFO, "shipment_voided", shipment_id=shipment_id, order_id=shipment.order_id)
    return Answer(_shipment_response(shipment, HTTPStatus.OK), withheld=roll.timeout)


async def _send_answer(
    request: Request, state: CarrierState, roll: FaultRoll, answer: Answer, call: CarrierCall | None
) -> Response:
    """Hold the answer for the latency (and the timeout hold), then hand it over unless the caller left."""
    delay = roll.latency_ms / 1000
    if answer.withheld:
        delay += state.settings.hold_seconds
        _log_fault("timeout", path=request.url.path, hold_seconds=state.settings.hold_seconds)
    if call is not None:
        call.start_hold()
    caller_waited = await _wait_unless_disconnected(request.receive, delay)
    status_code = answer.response.status_code
    if call is not None:
        call.finish(status_code if caller_waited else ABANDONED)
        log_event(
            logger,
            logging.INFO,
            "carrier_call_answered" if caller_waited else "carrier_call_abandoned",
            call_id=call.call_id,
            method=call.method,
            path=call.path,
            order_id=call.order_id,
            idempotency_key=call.idempotency_key,
            status_code=status_code,
            held_ms=call.held_ms,
        )
    return answer.response


async def _wait_unless_disconnected(receive: Receive, seconds: float) -> bool:
    """Sleep ``seconds``; ``False`` as soon as the client disconnects (the server says so through ``receive``)."""
    if seconds <= 0:
        return True
    disconnected = asyncio.ensure_future(_disconnect(receive))
    try:
        done, _ = await asyncio.wait({disconnected}, timeout=seconds)
        return disconnected not in done
    finally:
        disconnected.cancel()
        await asyncio.wait({disconnected})


async def _disconnect(receive: Receive) -> None:
    """Return once the server reports ``http.disconnect`` (any remaining body is read and dropped)."""
    while (await receive())["type"] != "http.disconnect":
        pass


@contextmanager
def _abandoned_if_cancelled(call: CarrierCall) -> Iterator[None]:
    """Record the call as abandoned if its handler is cancelled (the caller or the server gave up)."""
    try:
        yield
    except asyncio.CancelledError:
        if call.outcome is not None:
            raise
        call.finish(ABANDONED)
        log_event(
            logger,
            logging.INFO,
            "carrier_call_abandoned",
            call_id=call.call_id,
            method=call.method,
            path=call.path,
            order_id=call.order_id,
            idempotency_key=call.idempotency_key,
            held_ms=call.held_ms,
        )
        raise


def _order_id_in(body: bytes) -> str | None:
    """The ``order_id`` of a body, if it has a usable one (also for bodies that fail validation)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if isinstance(document, dict):
        order_id = document.get("order_id")
        if isinstance(order_id, str) and order_id.strip():
            return order_id.strip()
    return None


def _shipment_response(shipment: Shipment, status: HTTPStatus) -> JSONResponse:
    return JSONResponse(ShipmentView.of(shipment).model_dump(mode="json"), status_code=status)


def _log_fault(kind: str, **fields: object) -> None:
    log_event(logger, logging.INFO, "fault_injected", fault=kind, **fields)
