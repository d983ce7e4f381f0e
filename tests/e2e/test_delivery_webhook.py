"""The carrier reports delivery with a signed webhook to fulfillment; the order becomes `delivered`. A forged
or replayed (signed ten minutes ago) report changes nothing; the same report twice makes one event."""

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from tests.support.fulfillment import FULFILLMENT_URL, created, fulfillment_record, stack_secret
from tests.support.orders import wait_for_status

WEBHOOK = f"{FULFILLMENT_URL}/webhooks/carrier"


def _report(order: dict[str, Any]) -> bytes:
    return json.dumps(
        {"shipment_id": order["fulfillment"]["shipment_id"], "order_id": order["id"], "status": "delivered",
         "delivered_at": "2026-11-24T12:00:00Z"}
    ).encode()  # fmt: skip


def _signed(body: bytes, secret: str, signed_at: float | None = None) -> dict[str, str]:
    """The carrier's signature header: `t=<unix seconds>,v1=<HMAC-SHA256 of "<t>." + body>`, signed now by default."""
    timestamp = int(time.time() if signed_at is None else signed_at)
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Carrier-Signature": f"t={timestamp},v1={digest}"}


def test_the_carriers_report_makes_the_order_delivered(order_api: httpx.Client, carrier_admin: httpx.Client) -> None:
    order_id = created(order_api)

    delivered = wait_for_status(order_api, order_id, "delivered", timeout=30)

    assert [entry["status"] for entry in delivered["history"]] == ["pending", "processing", "shipped", "delivered"]
    assert delivered["fulfillment"]["delivered_at"]


def test_a_forged_or_replayed_report_is_refused_with_401_and_changes_nothing(order_api: httpx.Client) -> None:
    order_id = created(order_api)
    shipped = wait_for_status(order_api, order_id, "shipped", timeout=10)  # the carrier's own report comes 5 s later
    body = _report(shipped)

    unsigned = httpx.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    forged = httpx.post(WEBHOOK, content=body, headers=_signed(body, "not-the-secret"))
    replayed = httpx.post(
        WEBHOOK, content=body, headers=_signed(body, stack_secret("CARRIER_WEBHOOK_SECRET"), time.time() - 600)
    )

    assert (unsigned.status_code, forged.status_code, replayed.status_code) == (401, 401, 401)
    assert forged.headers["content-type"] == "application/problem+json"
    record = fulfillment_record(order_id)
    assert record is not None
    assert (record["status"], record["events_to_publish"]) == ("shipped", [])


def test_the_same_report_twice_makes_one_delivered_event(order_api: httpx.Client) -> None:
    order_id = created(order_api)
    delivered = wait_for_status(order_api, order_id, "delivered", timeout=30)
    body = _report(delivered)
    headers = _signed(body, stack_secret("CARRIER_WEBHOOK_SECRET"))

    answers = [httpx.post(WEBHOOK, content=body, headers=headers).status_code for _ in range(2)]

    assert answers == [204, 204]
    # Fulfillment publishes only what it recorded as owed: a report that records nothing publishes nothing.
    record = fulfillment_record(order_id)
    assert record is not None
    assert (record["status"], record["events_to_publish"]) == ("delivered", [])
