"""The carrier's delivery reports: `POST /webhooks/carrier`, signed with HMAC-SHA256 over the raw body.

A report without a valid `X-Carrier-Signature: sha256=<hex>` is answered 401 and changes nothing. A repeated
report is acknowledged and changes nothing. A report that comes before the carrier's answer to the create call
was heard is answered 409, so the carrier sends it again later (it retries until a 2xx).
"""

import hashlib
import hmac
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from fulfillment_service.api.deps import FulfillmentHandlersDep, SettingsDep
from fulfillment_service.domain import ShipmentNotRecordedError
from fulfillment_service.handlers import UnknownOrderError

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Carrier-Signature"
SIGNATURE_PREFIX = "sha256="

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class DeliveryReport(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shipment_id: str
    order_id: str
    status: Literal["delivered"]
    delivered_at: AwareDatetime


def signature_of(body: bytes, secret: bytes) -> str:
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


@router.post(
    "/carrier",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="The carrier reports a shipment delivered",
    responses={401: {"description": "Missing or bad signature"}, 404: {"description": "Unknown order"},
               409: {"description": "The shipment is not recorded yet: send again later"}},
)  # fmt: skip
async def on_carrier_report(
    request: Request,
    settings: SettingsDep,
    handlers: FulfillmentHandlersDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> Response:
    body = await request.body()
    expected = signature_of(body, settings.carrier_webhook_secret.get_secret_value().encode())
    if signature is None or not hmac.compare_digest(signature.encode(), expected.encode()):
        logger.warning("carrier report with a missing or bad signature")
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or bad X-Carrier-Signature")
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
