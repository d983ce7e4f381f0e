"""What a shipment request looks like, and the states a shipment goes through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _StrictBody(BaseModel):
    """Unknown fields are refused (a misspelt ``line_2`` must not vanish silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Address(_StrictBody):
    line1: ShortText
    line2: ShortText | None = None
    city: ShortText
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 code; normalised to upper case."
    )

    @field_validator("country")
    @classmethod
    def _upper_case_country(cls, value: str) -> str:
        return value.upper()


class Recipient(_StrictBody):
    name: ShortText
    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=32)] | None = None
    address: Address


class LineItem(_StrictBody):
    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    quantity: int = Field(ge=1, le=10_000)


class ShipmentRequest(_StrictBody):
    """The body of ``POST /shipments``."""

    order_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    recipient: Recipient
    items: list[LineItem] = Field(min_length=1, max_length=500)


class ShipmentStatus(StrEnum):
    LABEL_CREATED = "label_created"
    VOIDED = "voided"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A permanent refusal to ship: ``reason`` is a stable machine-readable code, ``detail`` is for people."""

    reason: str
    detail: str
