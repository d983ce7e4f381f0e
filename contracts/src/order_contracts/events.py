"""The events that travel on `order-events` and `fulfillment-events`: one pydantic model per CloudEvent `type`.

Each model is the CloudEvent's `data`. Readers ignore unknown fields, so adding an optional field is not a
breaking change; removing or retyping one needs a new `type` version.
"""

from typing import ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class EventData(BaseModel):
    """Base of every event payload: the order it concerns, and its versioned CloudEvent type."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]

    order_id: str = Field(min_length=1, description="The order this event concerns; also the Kafka message key.")

    def event_id(self) -> str:
        """A CloudEvent id that is the same every time this very event is sent again."""
        return f"{self.event_type}:{self.order_id}"


class Address(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str = Field(description="ISO 3166-1 alpha-2")


class Customer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    email: str
    phone: str | None = None
    shipping_address: Address


class LineItem(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sku: str
    quantity: int = Field(ge=1)
    unit_price: str = Field(description="Exact decimal, as a string.")


class OrderCreated(EventData):
    """An order was accepted and stored."""

    event_type: ClassVar[str] = "order.created.v1"

    customer: Customer
    items: list[LineItem] = Field(min_length=1)
    currency: str
    total: str = Field(description="Exact decimal sum, in the currency's minor units.")
    created_at: AwareDatetime


class OrderCancelled(EventData):
    """The customer cancelled an order before it shipped."""

    event_type: ClassVar[str] = "order.cancelled.v1"

    reason: str
    cancelled_at: AwareDatetime


class FulfillmentStarted(EventData):
    """The fulfillment service picked an order up."""

    event_type: ClassVar[str] = "fulfillment.started.v1"

    picked_up_at: AwareDatetime


class FulfillmentShipped(EventData):
    """The carrier created a shipment for the order."""

    event_type: ClassVar[str] = "fulfillment.shipped.v1"

    carrier: str
    tracking_number: str
    shipment_id: str
    shipped_at: AwareDatetime
    attempts: int = Field(ge=1)


class FulfillmentFailed(EventData):
    """Fulfillment gave up on the order for good."""

    event_type: ClassVar[str] = "fulfillment.failed.v1"

    reason: str
    failed_at: AwareDatetime
    attempts: int = Field(ge=0)


class FulfillmentAttemptFailed(EventData):
    """One attempt to create the shipment failed in a way worth retrying (carrier down, slow or erroring, after the
    sidecar's own retries); the order stays in fulfillment and the next attempt is scheduled."""

    event_type: ClassVar[str] = "fulfillment.attempt_failed.v1"

    attempt: int = Field(ge=1, description="1 for the first attempt; one attempt spans the sidecar's fast retries.")
    error: str
    failed_at: AwareDatetime
    next_attempt_at: AwareDatetime | None = Field(
        default=None,
        description="When fulfillment tries again; absent when it gave up (fulfillment.failed.v1 follows).",
    )

    def event_id(self) -> str:
        return f"{self.event_type}:{self.order_id}:{self.attempt}"


class FulfillmentVoided(EventData):
    """The order was cancelled after its shipment was created: the carrier voided that shipment."""

    event_type: ClassVar[str] = "fulfillment.voided.v1"

    shipment_id: str
    voided_at: AwareDatetime


class FulfillmentVoidRefused(EventData):
    """The order was cancelled (or given up on) after the carrier created its shipment, and the carrier refused to
    void that shipment (it was delivered already, say): the shipment is still live. Sent once, at the first
    refusal; fulfillment keeps asking the carrier, with backoff, until it voids the shipment
    (fulfillment.voided.v1 follows then)."""

    event_type: ClassVar[str] = "fulfillment.void_refused.v1"

    shipment_id: str
    reason: str = Field(description="What the carrier answered.")
    refused_at: AwareDatetime


class FulfillmentDelivered(EventData):
    """The carrier reported the shipment delivered."""

    event_type: ClassVar[str] = "fulfillment.delivered.v1"

    shipment_id: str
    delivered_at: AwareDatetime


ORDER_EVENT_MODELS: tuple[type[EventData], ...] = (OrderCreated, OrderCancelled)
"""What the order service publishes, on `order-events`."""

FULFILLMENT_EVENT_MODELS: tuple[type[EventData], ...] = (
    FulfillmentStarted,
    FulfillmentAttemptFailed,
    FulfillmentShipped,
    FulfillmentFailed,
    FulfillmentVoided,
    FulfillmentVoidRefused,
    FulfillmentDelivered,
)
"""What the fulfillment service publishes, on `fulfillment-events`."""

EVENT_MODELS: tuple[type[EventData], ...] = ORDER_EVENT_MODELS + FULFILLMENT_EVENT_MODELS
"""Every event type this contract defines, in lifecycle order."""

EVENT_MODEL_BY_TYPE: dict[str, type[EventData]] = {model.event_type: model for model in EVENT_MODELS}
