"""Fulfillment service settings, from the environment (prefix FULFILLMENT_SERVICE_)."""

from functools import lru_cache

from order_contracts.names import ORDER_EVENTS_TOPIC, PUBSUB_NAME
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FULFILLMENT_SERVICE_")

    host: str = "127.0.0.1"
    port: int = 8001
    app_id: str = "fulfillment-service"
    state_store: str = "fulfillment-store"
    pubsub: str = PUBSUB_NAME
    topic: str = ORDER_EVENTS_TOPIC
    carrier_endpoint: str = "carrier"
    """The Dapr HTTPEndpoint (components/carrier.yaml) or app id the carrier is invoked through."""
    dapr_http_port: int = 3501
    """The sidecar's HTTP port; `dapr run` sets DAPR_HTTP_PORT, which wins."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
