"""Order service settings, from the environment (prefix ORDER_SERVICE_). The sidecar's own ports come from the
DAPR_HTTP_PORT / DAPR_GRPC_PORT variables that `dapr run` sets, read by the Dapr SDK; the token the sidecar proves
itself with comes from APP_API_TOKEN, the variable daprd itself reads (no prefix)."""

from functools import lru_cache

from order_contracts.names import (
    FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC,
    FULFILLMENT_EVENTS_TOPIC,
    ORDER_EVENTS_TOPIC,
    PUBSUB_NAME,
)
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from service_runtime.sidecar_token import APP_API_TOKEN_ENV


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDER_SERVICE_")

    app_api_token: SecretStr = Field(validation_alias=APP_API_TOKEN_ENV, min_length=1)
    """Required. The sidecar sends it as the `dapr-api-token` header with every call to the app (daprd reads the
    same variable); the event endpoints refuse calls without it, so only the sidecar can deliver events."""
    host: str = "127.0.0.1"
    port: int = 8000
    app_id: str = "order-service"
    state_store: str = "order-store"
    pubsub: str = PUBSUB_NAME
    topic: str = ORDER_EVENTS_TOPIC
    """Where the service publishes its order events."""
    subscription_topic: str = FULFILLMENT_EVENTS_TOPIC
    """Where it reads fulfillment progress from: its only subscription."""
    dead_letter_topic: str = FULFILLMENT_EVENTS_DEAD_LETTER_TOPIC
    """Where the sidecar moves what the subscription refuses (DROP) or cannot deliver."""
    bulk_max_events: int = 100
    """The most fulfillment events the sidecar hands over in one batch (each batch: one read, one transaction)."""
    bulk_max_wait_ms: int = 20
    """The longest the sidecar holds a batch that is not full: the most latency batching adds to folding."""
    idempotency_key_ttl_seconds: int = 25 * 3600
    """How long an Idempotency-Key is remembered: the promise is at least 24 h."""
    relay_scan_interval_seconds: float = 1.0
    relay_max_backoff_seconds: float = 8.0
    publish_timeout_seconds: float = 2.0
    fault_crash_after_commit: bool = False
    """Fault injection for the crash drill only: the process kills itself (SIGKILL) right after the first state
    transaction that owes an event, before anything is published."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
