"""Settings of the shipping mock, read from the environment (prefix ``CARRIER_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Self

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the carrier mock can be told at start-up.

    Fault settings (latency, error rates, ``down``) are not here: they change at run
    time through ``PUT /admin/faults``.
    """

    model_config = SettingsConfigDict(env_prefix="CARRIER_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8002, ge=1, le=65535)
    carrier_name: str = Field(default="Acme Parcel", min_length=1)

    hold_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How long the answer is withheld when the timeout fault fires (the shipment is stored first).",
    )
    delivery_after_seconds: float = Field(
        default=5.0, ge=0, description="Delay between creating a shipment and reporting it delivered."
    )
    webhook_url: AnyHttpUrl | None = Field(
        default=None, description="Where delivery webhooks are POSTed; unset means no webhooks are sent."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key for the X-Carrier-Signature header; required with webhook_url."
    )
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, description="Timeout of one webhook attempt.")
    webhook_retry_initial_seconds: float = Field(
        default=1.0, gt=0, description="First back-off between webhook attempts; doubles after each failure."
    )
    webhook_retry_max_seconds: float = Field(default=30.0, gt=0, description="Cap of the webhook back-off.")

    random_seed: int | None = Field(
        default=None, description="Seed of the fault dice; set it for a reproducible sequence of faults."
    )
    shutdown_grace_seconds: int = Field(
        default=5, ge=0, description="How long a shutdown waits for in-flight (possibly held) answers."
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Self:
        if self.webhook_url is not None and (self.webhook_secret is None or not self.webhook_secret.get_secret_value()):
            raise ValueError("CARRIER_WEBHOOK_SECRET must be set when CARRIER_WEBHOOK_URL is set")
        if self.webhook_retry_initial_seconds > self.webhook_retry_max_seconds:
            raise ValueError("webhook_retry_initial_seconds must not exceed webhook_retry_max_seconds")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
