"""Fulfillment service settings, from the environment (prefix FULFILLMENT_SERVICE_, except the two secrets shared
with other processes: APP_API_TOKEN, which daprd reads too, and CARRIER_WEBHOOK_SECRET, which the carrier signs
with). No secret has a default: the service does not start without them."""

import socket
from functools import lru_cache

from order_contracts.names import (
    FULFILLMENT_EVENTS_TOPIC,
    ORDER_EVENTS_DEAD_LETTER_TOPIC,
    ORDER_EVENTS_TOPIC,
    PUBSUB_NAME,
)
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from service_runtime.sidecar_token import APP_API_TOKEN_ENV


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FULFILLMENT_SERVICE_")

    host: str = "127.0.0.1"
    port: int = 8001
    app_id: str = "fulfillment-service"
    state_store: str = "fulfillment-store"
    pubsub: str = PUBSUB_NAME
    topic: str = FULFILLMENT_EVENTS_TOPIC
    """Where the service publishes fulfillment progress."""
    subscription_topic: str = ORDER_EVENTS_TOPIC
    """Where it reads the orders to fulfil (and their cancellations) from: its only subscription."""
    dead_letter_topic: str = ORDER_EVENTS_DEAD_LETTER_TOPIC
    """Where the sidecar moves what the subscription refuses (DROP) or cannot deliver."""
    bulk_max_events: int = 100
    """The most order events the sidecar hands over in one batch (new orders in it: one transaction, one publish)."""
    bulk_max_wait_ms: int = 20
    """The longest the sidecar holds a batch that is not full: the most latency batching adds to a pickup."""
    carrier_endpoint: str = "carrier"
    """The Dapr HTTPEndpoint (components/carrier.yaml) or app id the carrier is invoked through."""
    dapr_http_port: int = 3501
    """The sidecar's HTTP port; `dapr run` sets DAPR_HTTP_PORT, which wins."""

    app_api_token: SecretStr = Field(validation_alias=APP_API_TOKEN_ENV, min_length=1)
    """What the sidecar sends as `dapr-api-token` on every call to the app (daprd reads the same variable)."""
    carrier_webhook_secret: SecretStr = Field(validation_alias="CARRIER_WEBHOOK_SECRET", min_length=1)
    """The HMAC-SHA256 key of the carrier's `X-Carrier-Signature`."""

    worker_id: str = Field(default_factory=lambda settings: f"{socket.gethostname()}:{settings['port']}")
    """Names this instance's leases; stable across its restarts (host and port by default)."""
    max_concurrent_carrier_calls: int = 100
    lease_seconds: float = 150.0
    """Longer than one attempt through the sidecar can last: 4 tries of 10 s plus backoff (resiliency.yaml)."""
    poll_seconds: float = 1.0
    """How often the worker reads the work index (parked orders, expired leases, unpublished events)."""
    carrier_probe_seconds: float = 2.0
    """While the carrier is unavailable, how often one held order is tried to find out whether it is back (Dapr's
    breaker answers at once while it is open, so a probe costs little)."""
    retry_first_delay_seconds: float = 2.0
    retry_max_delay_seconds: float = 60.0
    give_up_after_seconds: float = 24 * 3600.0
    """How long after pickup an order that could not be shipped is failed with "carrier unavailable"."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
