"""The carrier's delivery reports: `POST /webhooks/carrier`, signed with HMAC-SHA256 over the time it was signed
and the raw body.

`X-Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`. A report without a valid signature,
or signed more than five minutes away from our clock (a captured report replayed later), is answered 401 and
changes nothing. A repeated report within the window is acknowledged and changes nothing. A report that comes
before the carrier's answer to the create call was heard is answered 409, so the carrier sends it again later (it
retries until a 2xx). A body over the app's limit is answered 413 before it is read (main.py).
"""

import hashlib
import hmac
import logging
import re
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from fulfillment_service.api.deps import FulfillmentHandlersDep, SettingsDep
from fulfillment_service.api.problems import PROBLEM_RESPONSES
from fulfillment_service.domain import ShipmentNotRecordedError
from fulfillment_service.handlers import UnknownOrderError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Carrier-Signature"
SIGNATURE_TOLERANCE = timedelta(minutes=5)
"""How far the signing time may be from our clock, either way: the carrier's clock drifts, and a report waits in
its retry queue no longer than a signature lives (it signs every attempt anew)."""

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class DeliveryReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shipment_id: str
    order_id: str
    status: Literal["delivered"]
    delivered_at: AwareDatetime


_SIGNATURE_FORMAT = re.compile(r"t=(?P<t>[0-9]{1,12}),v1=[0-9a-f]{64}")


def signature_of(body: bytes, secret: bytes, signed_at: int) -> str:
    """The signature header's value for ``body`` signed at ``signed_at`` (Unix seconds)."""
    digest = hmac.new(secret, f"{signed_at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"


def is_signed_within_tolerance(header: str | None, body: bytes, secret: bytes, now: datetime) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` at a time within SIGNATURE_TOLERANCE of ``now``."""
    signed = _SIGNATURE_FORMAT.fullmatch(header or "")
    if signed is None or abs(now.timestamp() - int(signed["t"])) > SIGNATURE_TOLERANCE.total_seconds():
        return False
    expected = signature_of(body, secret, int(signed["t"]))
    return hmac.compare_digest(expected.encode(), signed[0].encode())


def _problem(status: int, description: str) -> dict[str, Any]:
    return {**PROBLEM_RESPONSES[status], "description": description}


@router.post(
    "/carrier",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The carrier reports a shipment delivered",
    # The body is read raw (the signature is over its bytes), so FastAPI cannot know it: documented here.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": DeliveryReport.model_json_schema()}},
        }
    },
    responses={
        401: _problem(401, "Missing, bad or expired signature"),
        404: _problem(404, "Unknown order"),
        409: _problem(409, "The shipment is not recorded yet: send again later"),
        413: PROBLEM_RESPONSES[413],
        415: PROBLEM_RESPONSES[415],
        422: _problem(422, "Signed, but not a delivery report"),
    },
)
async def on_carrier_report(
    request: Request,
    settings: SettingsDep,
    handlers: FulfillmentHandlersDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> Response:
    body = await request.body()
    secret = settings.carrier_webhook_secret.get_secret_value().encode()
    if not is_signed_within_tolerance(signature, body, secret, handlers.clock()):
        logger.warning("carrier report with a missing, bad or expired signature")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing, bad or expired X-Carrier-Signature")
    try:
        report = DeliveryReport.model_validate_json(body)
    except ValidationError as error:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from error
    try:
        await handlers.record_delivery(
            order_id=report.order_id, shipment_id=report.shipment_id, delivered_at=report.delivered_at
        )
    except UnknownOrderError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from error
    except ShipmentNotRecordedError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    logger.info("delivery reported", extra={"order_id": report.order_id, "shipment_id": report.shipment_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
