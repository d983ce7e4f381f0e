"""The strict request schema of ``POST /orders``.

Every model forbids unknown members and is frozen. Validation reports every violation, not only the first; the
same errors (types and locations) come out of ``CreateOrderRequest.model_validate(dict)`` (what FastAPI does with a
parsed body) and ``CreateOrderRequest.model_validate_json(raw)``.

Two rules need to see more than one field, yet must report at the offending item's field:

* a ``unit_price`` may have no more decimal places than the order currency's ISO 4217 minor unit
  (reported at ``/items/N/unit_price``; skipped when the currency itself is invalid), and
* a SKU may appear once per order (reported at the later occurrence, ``/items/N/sku``).

``CreateOrderRequest`` publishes the raw currency and a set of seen SKUs in a context variable while its fields
are validated, and ``LineItemIn``'s field validators read it, so pydantic places those errors itself, alongside
every other error. Validated on its own, a ``LineItemIn`` skips both order-level checks.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Final, Self

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictInt,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from order_service.reference_data import is_country_code, is_currency_code, minor_units

__all__ = [
    "EXAMPLE_ORDER",
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "MAX_UNIT_PRICE",
    "AddressIn",
    "CreateOrderRequest",
    "CustomerIn",
    "LineItemIn",
]

MAX_ITEMS: Final = 100
MAX_QUANTITY: Final = 1000
MAX_UNIT_PRICE: Final = 1_000_000

_IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9._-]+$"
_IDENTIFIER = re.compile(r"[A-Za-z0-9._-]+")
_PHONE_PATTERN: Final = r"^[0-9 +()-]+$"
_PHONE = re.compile(r"[0-9 +()-]+")
_COUNTRY_PATTERN: Final = r"^[A-Z]{2}$"
_CURRENCY_PATTERN: Final = r"^[A-Z]{3}$"
# A decimal written as a string: optional minus, ASCII digits, optional fraction. No exponent, no whitespace,
# no underscores, no NaN/Infinity (all of which Python's Decimal() would otherwise accept).
_DECIMAL_TEXT_PATTERN: Final = r"^-?[0-9]+(\.[0-9]+)?$"
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

EXAMPLE_ORDER: Final[dict[str, Any]] = {
    "customer": {
        "id": "cust-42",
        "name": "Jane Doe",
        "email": "jane.doe@example.com",
        "phone": "+44 20 7946 0000",
        "shipping_address": {
            "line1": "1 Example Street",
            "line2": None,
            "city": "London",
            "region": None,
            "postal_code": "SW1A 1AA",
            "country": "GB",
        },
    },
    "items": [{"sku": "BOOK-123", "quantity": 2, "unit_price": "12.50"}],
    "currency": "GBP",
}


# --- single-field checks -------------------------------------------------------------------------------------------


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank_string", "Must not be blank")
    return value


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise PydanticCustomError("identifier_pattern", "Must contain only ASCII letters, digits, '.', '_' and '-'")
    return value


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value) or not any(char.isdigit() for char in value):
        raise PydanticCustomError(
            "phone_pattern", "Must be a phone number of digits, spaces and the characters + - ( )"
        )
    return value


def _email(value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise PydanticCustomError("email", "Not a valid email address: {reason}", {"reason": str(error)}) from None
    return checked.normalized


def _country(value: str) -> str:
    if not is_country_code(value):
        raise PydanticCustomError(
            "country_code", 'Must be an assigned ISO 3166-1 alpha-2 country code in upper case, such as "GB"'
        )
    return value


def _currency(value: str) -> str:
    if not is_currency_code(value):
        raise PydanticCustomError(
            "currency_code", 'Must be an active ISO 4217 currency code in upper case, such as "GBP"'
        )
    return value


def _decimal_text(value: Any) -> Any:
    """Only a plain decimal string gets through to Decimal(); numbers are left to pydantic (bool is refused)."""
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise PydanticCustomError("decimal_parsing", 'Must be a decimal number such as "12.50"')
    return value


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": _IDENTIFIER_PATTERN}),
    AfterValidator(_identifier),
]
Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]
Text100 = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_not_blank)]
Text20 = Annotated[str, Field(min_length=1, max_length=20), AfterValidator(_not_blank)]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"}), AfterValidator(_email)]
Phone = Annotated[
    str,
    Field(min_length=1, max_length=32, json_schema_extra={"pattern": _PHONE_PATTERN}),
    AfterValidator(_phone),
]
CountryCode = Annotated[str, Field(json_schema_extra={"pattern": _COUNTRY_PATTERN}), AfterValidator(_country)]
CurrencyCode = Annotated[str, Field(json_schema_extra={"pattern": _CURRENCY_PATTERN}), AfterValidator(_currency)]
Price = Annotated[
    Decimal,
    BeforeValidator(_decimal_text),
    Field(gt=0, le=MAX_UNIT_PRICE, allow_inf_nan=False),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": _DECIMAL_TEXT_PATTERN},
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1_000_000},
            ]
        }
    ),
]


# --- order-level context shared with the line items ----------------------------------------------------------------


@dataclass
class _OrderContext:
    currency: str | None
    """The order currency when it is valid, else None (then the minor-unit check is skipped)."""
    minor_units: int | None
    seen_skus: set[str] = field(default_factory=set)


_ORDER_CONTEXT: ContextVar[_OrderContext | None] = ContextVar("order_service_order_context", default=None)


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: NaN and infinities were refused before
    return max(0, -exponent)


# --- models --------------------------------------------------------------------------------------------------------


class AddressIn(BaseModel):
    """A postal address to ship to."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_ORDER["customer"]["shipping_address"]]}
    )

    line1: Text200 = Field(description="First address line; 1-200 characters, not blank.", examples=["1 Example St"])
    line2: str | None = Field(
        default=None, max_length=200, description="Second address line; optional, up to 200 characters."
    )
    city: Text100 = Field(description="City or town; 1-100 characters, not blank.", examples=["London"])
    region: str | None = Field(
        default=None, max_length=100, description="State, county or province; optional, up to 100 characters."
    )
    postal_code: Text20 = Field(description="Postal code; 1-20 characters, not blank.", examples=["SW1A 1AA"])
    country: CountryCode = Field(
        description="Assigned ISO 3166-1 alpha-2 country code, upper case.", examples=["GB", "US", "DE"]
    )


class CustomerIn(BaseModel):
    """The customer placing the order."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_ORDER["customer"]]})

    id: Identifier = Field(
        description="The customer's id in the calling system: 1-64 characters of A-Z a-z 0-9 . _ -",
        examples=["cust-42"],
    )
    name: Text200 = Field(description="Full name; 1-200 characters, not blank.", examples=["Jane Doe"])
    email: Email = Field(
        description="Email address; checked for syntax only (no DNS lookup), returned normalized.",
        examples=["jane.doe@example.com"],
    )
    phone: Phone | None = Field(
        default=None,
        description="Phone number; optional, up to 32 characters of digits, spaces and + - ( ).",
        examples=["+44 20 7946 0000"],
    )
    shipping_address: AddressIn = Field(description="Where to ship the order.")


class LineItemIn(BaseModel):
    """One product line of the order."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": EXAMPLE_ORDER["items"]})

    sku: Identifier = Field(
        description="Stock keeping unit: 1-64 characters of A-Z a-z 0-9 . _ - ; at most one line per SKU.",
        examples=["BOOK-123"],
    )
    quantity: StrictInt = Field(
        ge=1, le=MAX_QUANTITY, description="How many units: a JSON integer from 1 to 1000.", examples=[2]
    )
    unit_price: Price = Field(
        description=(
            "Price of one unit, as a decimal string (preferred, exact) or a JSON number: greater than 0, at most "
            "1000000, with no more decimal places than the currency's ISO 4217 minor unit (2 for GBP, 0 for JPY)."
        ),
        examples=["12.50"],
    )

    @field_validator("sku")
    @classmethod
    def _sku_once_per_order(cls, sku: str) -> str:
        context = _ORDER_CONTEXT.get()
        if context is not None:
            if sku in context.seen_skus:
                raise PydanticCustomError(
                    "duplicate_sku", 'SKU "{sku}" is already used by an earlier line of this order', {"sku": sku}
                )
            context.seen_skus.add(sku)
        return sku

    @field_validator("unit_price")
    @classmethod
    def _fits_currency_minor_units(cls, price: Decimal) -> Decimal:
        context = _ORDER_CONTEXT.get()
        if context is not None and context.minor_units is not None and _decimal_places(price) > context.minor_units:
            raise PydanticCustomError(
                "currency_minor_units",
                "Must have at most {minor_units} decimal places for {currency}",
                {"minor_units": context.minor_units, "currency": context.currency},
            )
        return price


class CreateOrderRequest(BaseModel):
    """The body of ``POST /orders``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [EXAMPLE_ORDER]})

    customer: CustomerIn = Field(description="Who orders, and where to ship.")
    items: list[LineItemIn] = Field(
        min_length=1, max_length=MAX_ITEMS, description="The order lines: 1-100 of them, each SKU at most once."
    )
    currency: CurrencyCode = Field(
        description="Active ISO 4217 currency code, upper case, of every unit_price.", examples=["GBP", "EUR", "JPY"]
    )

    @model_validator(mode="wrap")
    @classmethod
    def _validate_within_order_context(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        currency = data.get("currency") if isinstance(data, dict) else None
        valid_currency = currency if isinstance(currency, str) and is_currency_code(currency) else None
        context = _OrderContext(
            currency=valid_currency,
            minor_units=minor_units(valid_currency) if valid_currency is not None else None,
        )
        token = _ORDER_CONTEXT.set(context)
        try:
            return handler(data)
        finally:
            _ORDER_CONTEXT.reset(token)
