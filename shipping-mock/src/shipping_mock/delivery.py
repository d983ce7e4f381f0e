"""Delivery reports: some time after a shipment is created the carrier "delivers" it and says so by webhook.

* ``delivery_after_seconds`` after creation the parcel counts as delivered; ``delivered_at`` is
  fixed at that moment and the same body is sent on every attempt.
* The body is ``{"shipment_id", "order_id", "status": "delivered", "delivered_at"}``, signed anew on every
  attempt with ``X-Carrier-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + the raw body>`` keyed by
  ``webhook_secret``: the receiver refuses a signature too far from its clock, so a captured report cannot be
  replayed later.
* Any answer other than 2xx (or no answer) is retried with exponential back-off, starting at
  ``webhook_retry_initial_seconds`` and capped at ``webhook_retry_max_seconds``, until a 2xx.
* Only an accepted report turns the shipment ``delivered``. A shipment voided before an attempt
  is never reported; an attempt and a cancel never overlap (both hold the shipment's status lock).
* Without ``webhook_url`` nothing is scheduled and shipments stay ``label_created``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from datetime import datetime

import httpx

from shipping_mock.config import Settings
from shipping_mock.json_logging import log_event
from shipping_mock.models import ShipmentStatus
from shipping_mock.store import Shipment, utc_now

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Carrier-Signature"


def sign(body: bytes, secret: str, signed_at: datetime) -> str:
    """The value of the signature header for ``body`` sent at ``signed_at``."""
    timestamp = int(signed_at.timestamp())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class DeliveryReporter:
    """Schedules one delivery report per shipment and keeps track of the tasks doing it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: httpx.AsyncClient | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def enabled(self) -> bool:
        return self._settings.webhook_url is not None

    def start(self, client: httpx.AsyncClient) -> None:
        """Called from the lifespan: reports can be sent from now on."""
        self._client = client

    def schedule(self, shipment: Shipment) -> None:
        if not self.enabled:
            return
        task = asyncio.create_task(self._report(shipment), name=f"delivery-report-{shipment.shipment_id}")
        self._tasks[shipment.shipment_id] = task
        task.add_done_callback(lambda done: self._forget(shipment.shipment_id, done))

    def cancel(self, shipment_id: str) -> None:
        """Stop reporting one shipment (it was voided)."""
        task = self._tasks.pop(shipment_id, None)
        if task is not None:
            task.cancel()

    async def cancel_all(self) -> None:
        """Stop every pending report and wait until the tasks are gone."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def _forget(self, shipment_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(shipment_id) is task:
            del self._tasks[shipment_id]
        if not task.cancelled() and (error := task.exception()) is not None:
            log_event(
                logger,
                logging.ERROR,
                "delivery_report_crashed",
                shipment_id=shipment_id,
                error=repr(error),
            )

    async def _report(self, shipment: Shipment) -> None:
        await asyncio.sleep(self._settings.delivery_after_seconds)
        delivered_at = utc_now()
        body = json.dumps(
            {
                "shipment_id": shipment.shipment_id,
                "order_id": shipment.order_id,
                "status": ShipmentStatus.DELIVERED.value,
                "delivered_at": delivered_at.isoformat().replace("+00:00", "Z"),
            },
            separators=(",", ":"),
        ).encode()
        backoff = self._settings.webhook_retry_initial_seconds
        attempt = 0
        while True:
            attempt += 1
            async with shipment.status_lock:
                if shipment.status is not ShipmentStatus.LABEL_CREATED:
                    log_event(
                        logger,
                        logging.INFO,
                        "delivery_report_skipped",
                        shipment_id=shipment.shipment_id,
                        order_id=shipment.order_id,
                        status=shipment.status.value,
                    )
                    return
                if await self._send(shipment, body, attempt):
                    shipment.mark_delivered(delivered_at)
                    return
            log_event(
                logger,
                logging.INFO,
                "delivery_report_retry_scheduled",
                shipment_id=shipment.shipment_id,
                attempt=attempt,
                retry_in_seconds=backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._settings.webhook_retry_max_seconds)

    async def _send(self, shipment: Shipment, body: bytes, attempt: int) -> bool:
        """One attempt; ``True`` if the receiver accepted it (2xx)."""
        url, secret = self._settings.webhook_url, self._settings.webhook_secret
        if self._client is None or url is None or secret is None:
            raise RuntimeError("delivery reports need the lifespan's HTTP client, a webhook URL and a secret")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, secret.get_secret_value(), utc_now()),
        }
        fields: dict[str, object] = {"shipment_id": shipment.shipment_id, "order_id": shipment.order_id}
        try:
            response = await self._client.post(str(url), content=body, headers=headers)
        except httpx.HTTPError as error:
            log_event(logger, logging.WARNING, "delivery_report_failed", attempt=attempt, error=repr(error), **fields)
            return False
        if response.is_success:
            log_event(
                logger, logging.INFO, "delivery_reported", attempt=attempt, status_code=response.status_code, **fields
            )
            return True
        log_event(
            logger,
            logging.WARNING,
            "delivery_report_refused",
            attempt=attempt,
            status_code=response.status_code,
            **fields,
        )
        return False
