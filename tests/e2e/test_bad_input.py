"""Bad input on the real stack: a clear 4xx, never a 500, and the service still answers."""

import httpx
import pytest

from tests.support.orders import new_order


@pytest.mark.parametrize("path", ["/orders/outbox-index%7C0", "/orders/a%7C%7Cb", "/orders/readiness-probe%7C"])
def test_a_path_id_that_names_an_internal_or_refused_state_key_is_a_422(order_api: httpx.Client, path: str) -> None:
    assert order_api.get(path).status_code == 422
    assert order_api.post(f"{path}/cancel").status_code == 422
    assert order_api.post("/orders", json=new_order()).status_code == 201


def test_a_fulfillment_path_id_that_dapr_would_refuse_as_a_key_is_a_422(order_api: httpx.Client) -> None:
    assert httpx.get("http://127.0.0.1:8001/fulfillments/a%7C%7Cb", timeout=10).status_code == 422
