"""Only the sidecar may deliver events: it sends the app API token; anyone else gets 401 and changes nothing."""

import httpx
import pytest

from tests.support.fulfillment import stack_secret

EVENT_ENDPOINTS = [
    ("http://127.0.0.1:8000", "/events/fulfillment-events"),
    ("http://127.0.0.1:8001", "/events/order-events"),
]
CLOUD_EVENT = {"specversion": "1.0", "id": "forged-1", "source": "attacker", "type": "order.cancelled.v1",
               "data": {"order_id": "any", "reason": "forged", "cancelled_at": "2026-11-24T00:00:00Z"}}  # fmt: skip
BULK_DELIVERY = {"entries": [{"entryId": "0", "event": CLOUD_EVENT, "metadata": {}}]}


@pytest.mark.usefixtures("stack")
@pytest.mark.parametrize(("base_url", "path"), EVENT_ENDPOINTS)
def test_an_event_endpoint_called_without_the_app_token_answers_401(base_url: str, path: str) -> None:
    without = httpx.post(f"{base_url}{path}", json=BULK_DELIVERY, timeout=10)
    wrong = httpx.post(f"{base_url}{path}", json=BULK_DELIVERY, headers={"dapr-api-token": "guess"}, timeout=10)

    assert (without.status_code, wrong.status_code) == (401, 401)


@pytest.mark.usefixtures("stack")
@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://127.0.0.1:8001"])
def test_the_subscription_declaration_answers_the_token_holder_only(base_url: str) -> None:
    token = stack_secret("APP_API_TOKEN")

    assert httpx.get(f"{base_url}/dapr/subscribe", timeout=10).status_code == 401
    assert httpx.get(f"{base_url}/dapr/subscribe", headers={"dapr-api-token": token}, timeout=10).status_code == 200
