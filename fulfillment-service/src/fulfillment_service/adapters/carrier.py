"""The carrier, reached only through the sidecar's service invocation, so Dapr's resiliency policy applies
(components/resiliency.yaml: per-attempt timeout, retries, circuit breaker)."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
from order_contracts.events import OrderCreated
from pydantic import BaseModel, TypeAdapter, ValidationError

from fulfillment_service.domain import Shipment


@dataclass(frozen=True)
class FoundShipment:
    shipment: Shipment
    voided: bool


class CarrierRejectedError(Exception):
    """The carrier refused for good (HTTP 422 for a shipment; 404 or 409 for a void): retrying will not help."""


class CarrierUnavailableError(Exception):
    """The carrier could not be reached or failed (after Dapr's retries), or answered 2xx with a body that does not
    say what it did (it may have done it: a retry under the same idempotency key finds out): worth trying again
    later."""


class AbstractCarrier(ABC):
    @abstractmethod
    async def create_shipment(self, order: OrderCreated) -> Shipment: ...

    @abstractmethod
    async def void_shipment(self, shipment_id: str) -> None: ...

    @abstractmethod
    async def find_shipment(self, order_id: str) -> FoundShipment | None:
        """The shipment the carrier holds under the order's reference (one key, so one at most), if any."""


class _ShipmentView(BaseModel):
    """A shipment as the carrier's search lists it (the fields read here; the others are ignored)."""

    shipment_id: str
    carrier: str
    tracking_number: str
    status: str

    def found(self) -> FoundShipment:
        shipment = Shipment(shipment_id=self.shipment_id, carrier=self.carrier, tracking_number=self.tracking_number)
        return FoundShipment(shipment=shipment, voided=self.status == "voided")


_SEARCH_ANSWER = TypeAdapter(list[_ShipmentView])


def shipment_idempotency_key(order_id: str) -> str:
    """One key per order: no retry, redelivery or crash can create a second shipment."""
    return f"order-{order_id}"


class DaprInvokedCarrier(AbstractCarrier):
    def __init__(self, http: httpx.AsyncClient, *, sidecar_url: str, endpoint: str) -> None:
        self._http = http
        self._shipments_url = f"{sidecar_url}/v1.0/invoke/{endpoint}/method/shipments"

    async def find_shipment(self, order_id: str) -> FoundShipment | None:
        try:
            response = await self._http.get(self._shipments_url, params={"order_id": order_id})
        except httpx.TransportError as error:
            raise CarrierUnavailableError(f"sidecar unreachable: {error!r}") from error
        if not response.is_success:
            raise CarrierUnavailableError(f"HTTP {response.status_code}: {_reason(response)}")
        try:
            found = _SEARCH_ANSWER.validate_json(response.content)
        except ValidationError as error:
            raise _unreadable(response, error) from error
        return found[0].found() if found else None

    async def void_shipment(self, shipment_id: str) -> None:
        try:
            response = await self._http.post(f"{self._shipments_url}/{shipment_id}/cancel")
        except httpx.TransportError as error:
            raise CarrierUnavailableError(f"sidecar unreachable: {error!r}") from error
        if response.status_code in (httpx.codes.NOT_FOUND, httpx.codes.CONFLICT):
            raise CarrierRejectedError(_reason(response))
        if not response.is_success:
            raise CarrierUnavailableError(f"HTTP {response.status_code}: {_reason(response)}")

    async def create_shipment(self, order: OrderCreated) -> Shipment:
        address = order.customer.shipping_address
        request = {
            "order_id": order.order_id,
            "recipient": {
                "name": order.customer.name,
                "phone": order.customer.phone,
                "address": address.model_dump(),
            },
            "items": [{"sku": item.sku, "quantity": item.quantity} for item in order.items],
        }
        try:
            response = await self._http.post(
                self._shipments_url,
                json=request,
                headers={"Idempotency-Key": shipment_idempotency_key(order.order_id)},
            )
        except httpx.TransportError as error:
            raise CarrierUnavailableError(f"sidecar unreachable: {error!r}") from error
        if response.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
            raise CarrierRejectedError(_reason(response))
        if not response.is_success:
            raise CarrierUnavailableError(f"HTTP {response.status_code}: {_reason(response)}")
        try:
            return Shipment.model_validate_json(response.content)
        except ValidationError as error:
            raise _unreadable(response, error) from error


def _unreadable(response: httpx.Response, error: ValidationError) -> CarrierUnavailableError:
    """A 2xx whose body is not what it should be: a carrier fault like a 5xx (where the body went wrong, not what
    it holds: it may carry the recipient's details)."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return CarrierUnavailableError(f"HTTP {response.status_code}, unreadable answer: {where}: {first['msg']}"[:200])


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("reason") or body.get("detail") or body.get("message") or body)[:200]
    return str(body)[:200]
