"""Strict validation of the POST /orders body, and the ISO reference data behind it."""

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pycountry
import pytest
from order_service import reference_data
from order_service.api.problems import violations_from_validation_error
from order_service.api.schemas import EXAMPLE_ORDER, CreateOrderRequest, LineItemIn
from order_service.reference_data import is_country_code, is_currency_code, minor_units
from pydantic import ValidationError

Payload = dict[str, Any]


def valid_payload() -> Payload:
    return copy.deepcopy(EXAMPLE_ORDER)


def item(sku: str = "BOOK-123", quantity: Any = 2, unit_price: Any = "12.50") -> Payload:
    return {"sku": sku, "quantity": quantity, "unit_price": unit_price}


def error_summary(error: ValidationError) -> list[tuple[str, tuple[str | int, ...]]]:
    # pydantic words a few messages differently for JSON input ("array" for "list"); types and places agree.
    return [(item["type"], tuple(item["loc"])) for item in error.errors()]


def pointers(payload: Any) -> set[str]:
    """Validate as a dict and as JSON text, check both fail identically, and return the violation pointers."""
    with pytest.raises(ValidationError) as from_python:
        CreateOrderRequest.model_validate(payload)
    with pytest.raises(ValidationError) as from_json:
        CreateOrderRequest.model_validate_json(json.dumps(payload))
    assert error_summary(from_python.value) == error_summary(from_json.value)
    violations = violations_from_validation_error(from_json.value, body=payload)
    assert violations == violations_from_validation_error(from_python.value, body=payload)
    assert violations == violations_from_validation_error(from_json.value)  # the same without the body at hand
    assert all(violation.message for violation in violations)
    return {violation.pointer for violation in violations if violation.pointer is not None}


def accept(payload: Payload) -> CreateOrderRequest:
    """Validate as a dict and as JSON text; both must succeed with equal results."""
    from_python = CreateOrderRequest.model_validate(payload)
    from_json = CreateOrderRequest.model_validate_json(json.dumps(payload))
    assert from_python == from_json
    return from_json


def change(path: str, value: Any) -> Callable[[Payload], None]:
    """A mutation setting the member at a slash-separated path (list indexes as numbers)."""
    *parents, leaf = path.split("/")

    def apply(payload: Payload) -> None:
        node: Any = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value

    return apply


def remove(path: str) -> Callable[[Payload], None]:
    *parents, leaf = path.split("/")

    def apply(payload: Payload) -> None:
        node: Any = payload
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[leaf]

    return apply


def combine(*mutations: Callable[[Payload], None]) -> Callable[[Payload], None]:
    def apply(payload: Payload) -> None:
        for mutation in mutations:
            mutation(payload)

    return apply


QUANTITY = "/items/0/quantity"
PRICE = "/items/0/unit_price"
COUNTRY = "/customer/shipping_address/country"

INVALID_CASES: list[tuple[str, Callable[[Payload], None], set[str]]] = [
    # quantity: a strict JSON integer, 1-1000
    ("quantity as string", change("items/0/quantity", "2"), {QUANTITY}),
    ("quantity 2.0", change("items/0/quantity", 2.0), {QUANTITY}),
    ("quantity 2.5", change("items/0/quantity", 2.5), {QUANTITY}),
    ("quantity true", change("items/0/quantity", True), {QUANTITY}),
    ("quantity null", change("items/0/quantity", None), {QUANTITY}),
    ("quantity 0", change("items/0/quantity", 0), {QUANTITY}),
    ("quantity 1001", change("items/0/quantity", 1001), {QUANTITY}),
    ("quantity missing", remove("items/0/quantity"), {QUANTITY}),
    # country: assigned ISO 3166-1 alpha-2, upper case
    ("country lower case", change("customer/shipping_address/country", "gb"), {COUNTRY}),
    ("country unassigned", change("customer/shipping_address/country", "XX"), {COUNTRY}),
    ("country user-assigned XK", change("customer/shipping_address/country", "XK"), {COUNTRY}),
    ("country alpha-3", change("customer/shipping_address/country", "GBR"), {COUNTRY}),
    ("country empty", change("customer/shipping_address/country", ""), {COUNTRY}),
    ("country number", change("customer/shipping_address/country", 826), {COUNTRY}),
    # unknown members, anywhere
    ("unknown top-level member", change("note", "hi"), {"/note"}),
    ("unknown customer member", change("customer/nickname", "JD"), {"/customer/nickname"}),
    ("unknown address member", change("customer/shipping_address/floor", 2), {"/customer/shipping_address/floor"}),
    ("unknown item member", change("items/0/discount", "1.00"), {"/items/0/discount"}),
    ("unknown member named like a tag", change("items/0/decimal", 1), {"/items/0/decimal"}),
    # missing members point where they should be
    ("missing currency", remove("currency"), {"/currency"}),
    ("missing customer", remove("customer"), {"/customer"}),
    ("missing items", remove("items"), {"/items"}),
    ("missing email", remove("customer/email"), {"/customer/email"}),
    ("missing country", remove("customer/shipping_address/country"), {COUNTRY}),
    ("missing address", remove("customer/shipping_address"), {"/customer/shipping_address"}),
    ("missing sku", remove("items/0/sku"), {"/items/0/sku"}),
    # SKUs: pattern, and once per order (reported at the later occurrence)
    ("repeated sku", change("items", [item(), item(unit_price="3.00")]), {"/items/1/sku"}),
    (
        "sku repeated twice",
        change("items", [item("A"), item("B"), item("A"), item("A")]),
        {"/items/2/sku", "/items/3/sku"},
    ),
    ("sku with space", change("items/0/sku", "BOOK 123"), {"/items/0/sku"}),
    ("sku empty", change("items/0/sku", ""), {"/items/0/sku"}),
    ("sku too long", change("items/0/sku", "S" * 65), {"/items/0/sku"}),
    ("sku with trailing newline", change("items/0/sku", "BOOK\n"), {"/items/0/sku"}),
    # unit_price: decimal > 0 and <= 1,000,000, within the currency's minor units
    ("JPY with decimals", combine(change("currency", "JPY"), change("items/0/unit_price", "12.5")), {PRICE}),
    ("JPY with number 12.0", combine(change("currency", "JPY"), change("items/0/unit_price", 12.0)), {PRICE}),
    ("GBP with 3 decimals", change("items/0/unit_price", "12.345"), {PRICE}),
    ("GBP with number 0.001", change("items/0/unit_price", 0.001), {PRICE}),
    ("GBP with number 1e-05", change("items/0/unit_price", 1e-05), {PRICE}),
    ("KWD with 4 decimals", combine(change("currency", "KWD"), change("items/0/unit_price", "1.2345")), {PRICE}),
    ("price 0", change("items/0/unit_price", 0), {PRICE}),
    ('price "0.00"', change("items/0/unit_price", "0.00"), {PRICE}),
    ("price -1", change("items/0/unit_price", -1), {PRICE}),
    ('price "-1"', change("items/0/unit_price", "-1"), {PRICE}),
    ("price 1000000.01", change("items/0/unit_price", 1000000.01), {PRICE}),
    ('price "1000000.01"', change("items/0/unit_price", "1000000.01"), {PRICE}),
    ("price true", change("items/0/unit_price", True), {PRICE}),
    ("price false", change("items/0/unit_price", False), {PRICE}),
    ("price null", change("items/0/unit_price", None), {PRICE}),
    ("price list", change("items/0/unit_price", ["12.50"]), {PRICE}),
    ("price object", change("items/0/unit_price", {"amount": "12.50"}), {PRICE}),
    ("price text", change("items/0/unit_price", "twelve"), {PRICE}),
    ("price empty", change("items/0/unit_price", ""), {PRICE}),
    ("price NaN", change("items/0/unit_price", "NaN"), {PRICE}),
    ("price Infinity", change("items/0/unit_price", "Infinity"), {PRICE}),
    ("price with exponent", change("items/0/unit_price", "1E+1"), {PRICE}),
    ("price with spaces", change("items/0/unit_price", " 12.50"), {PRICE}),
    ("price with underscore", change("items/0/unit_price", "1_000"), {PRICE}),
    ("price with comma", change("items/0/unit_price", "12,50"), {PRICE}),
    ("price with non-ASCII digits", change("items/0/unit_price", "\u0661\u0662"), {PRICE}),
    # items: 1-100 entries
    ("no items", change("items", []), {"/items"}),
    ("101 items", change("items", [item(f"SKU-{n}") for n in range(101)]), {"/items"}),
    ("items not a list", change("items", {"sku": "BOOK-123"}), {"/items"}),
    ("item not an object", change("items", ["BOOK-123"]), {"/items/0"}),
    # customer fields
    ("blank name", change("customer/name", "   "), {"/customer/name"}),
    ("empty name", change("customer/name", ""), {"/customer/name"}),
    ("name too long", change("customer/name", "N" * 201), {"/customer/name"}),
    ("name not a string", change("customer/name", 42), {"/customer/name"}),
    ("customer id with space", change("customer/id", "cust 42"), {"/customer/id"}),
    ("customer id empty", change("customer/id", ""), {"/customer/id"}),
    ("customer id too long", change("customer/id", "c" * 65), {"/customer/id"}),
    ("customer id non-ASCII", change("customer/id", "cüst"), {"/customer/id"}),
    ("customer id number", change("customer/id", 42), {"/customer/id"}),
    ("email without domain", change("customer/email", "jane"), {"/customer/email"}),
    ("email with display name", change("customer/email", "Jane <jane@example.com>"), {"/customer/email"}),
    ("email with double dot", change("customer/email", "jane..doe@example.com"), {"/customer/email"}),
    ("phone with letters", change("customer/phone", "call me"), {"/customer/phone"}),
    ("phone too long", change("customer/phone", "1" * 33), {"/customer/phone"}),
    ("phone blank", change("customer/phone", "   "), {"/customer/phone"}),
    ("customer not an object", change("customer", "Jane"), {"/customer"}),
    ("customer null", change("customer", None), {"/customer"}),
    # address fields
    ("blank line1", change("customer/shipping_address/line1", " \t"), {"/customer/shipping_address/line1"}),
    ("line1 too long", change("customer/shipping_address/line1", "L" * 201), {"/customer/shipping_address/line1"}),
    ("line2 too long", change("customer/shipping_address/line2", "L" * 201), {"/customer/shipping_address/line2"}),
    ("line2 number", change("customer/shipping_address/line2", 2), {"/customer/shipping_address/line2"}),
    ("empty city", change("customer/shipping_address/city", ""), {"/customer/shipping_address/city"}),
    ("city too long", change("customer/shipping_address/city", "C" * 101), {"/customer/shipping_address/city"}),
    ("region too long", change("customer/shipping_address/region", "R" * 101), {"/customer/shipping_address/region"}),
    (
        "postal code too long",
        change("customer/shipping_address/postal_code", "P" * 21),
        {"/customer/shipping_address/postal_code"},
    ),
    (
        "blank postal code",
        change("customer/shipping_address/postal_code", "  "),
        {"/customer/shipping_address/postal_code"},
    ),
    # currency: active ISO 4217, upper case, with minor units
    ("currency lower case", change("currency", "gbp"), {"/currency"}),
    ("currency unknown", change("currency", "ABC"), {"/currency"}),
    ("currency without minor units", change("currency", "XXX"), {"/currency"}),
    ("currency gold", change("currency", "XAU"), {"/currency"}),
    ("currency withdrawn", change("currency", "BGN"), {"/currency"}),
    ("currency numeric", change("currency", 826), {"/currency"}),
    (
        "invalid currency skips the minor-unit check",
        combine(change("currency", "gbp"), change("items/0/unit_price", "12.345")),
        {"/currency"},
    ),
    # several at once: every violation is reported
    (
        "many violations",
        combine(
            change("items/0/quantity", "2"),
            change("customer/shipping_address/country", "gb"),
            change("customer/nickname", "JD"),
            change("customer/name", "   "),
            remove("currency"),
            change("items", [item(quantity="2"), item(unit_price=0), item("B", 2.0, "1.999")]),
        ),
        {
            "/items/0/quantity",
            "/items/1/sku",
            "/items/1/unit_price",
            "/items/2/quantity",
            COUNTRY,
            "/customer/nickname",
            "/customer/name",
            "/currency",
        },
    ),
    (
        "minor units checked on every item even when others fail",
        combine(
            change("currency", "JPY"),
            change("items", [item("A", "2", "100"), item("B", 1, "1.5"), item("C", 1, 100.5)]),
        ),
        {"/items/0/quantity", "/items/1/unit_price", "/items/2/unit_price"},
    ),
]


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [pytest.param(mutation, expected, id=name) for name, mutation, expected in INVALID_CASES],
)
def test_invalid_payload_reports_exactly_these_pointers(
    mutation: Callable[[Payload], None], expected: set[str]
) -> None:
    payload = valid_payload()
    mutation(payload)
    assert pointers(payload) == expected


@pytest.mark.parametrize("body", [[], "order", 42, None], ids=["array", "string", "number", "null"])
def test_a_body_that_is_not_an_object_points_at_the_root(body: Any) -> None:
    assert pointers(body) == {""}


def test_every_violation_of_one_payload_is_a_separate_error() -> None:
    payload = valid_payload()
    combine(change("items/0/quantity", "2"), change("currency", "gbp"), remove("customer/email"))(payload)
    with pytest.raises(ValidationError) as caught:
        CreateOrderRequest.model_validate(payload)
    assert caught.value.error_count() == 3


def test_the_example_payload_is_accepted_exactly() -> None:
    order = accept(valid_payload())
    assert order.currency == "GBP"
    assert order.customer.id == "cust-42"
    assert order.customer.phone == "+44 20 7946 0000"
    assert order.customer.shipping_address.country == "GB"
    assert order.customer.shipping_address.line2 is None
    [line] = order.items
    assert line.sku == "BOOK-123"
    assert line.quantity == 2
    assert isinstance(line.unit_price, Decimal)
    assert line.unit_price.as_tuple() == Decimal("12.50").as_tuple()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("12.50", "12.50"),
        ("12", "12"),
        ("0.01", "0.01"),
        ("1000000", "1000000"),
        ("1000000.00", "1000000.00"),
        (12.5, "12.5"),
        (0.1, "0.1"),
        (0.07, "0.07"),
        (19.99, "19.99"),
        (1000000, "1000000"),
        (3, "3"),
    ],
)
def test_unit_price_is_an_exact_decimal_from_a_string_or_a_number(given: Any, expected: str) -> None:
    payload = valid_payload()
    payload["items"][0]["unit_price"] = given
    [line] = accept(payload).items
    assert line.unit_price.as_tuple() == Decimal(expected).as_tuple()


def test_a_json_number_becomes_the_decimal_it_reads_as() -> None:
    raw = json.dumps(valid_payload()).replace('"12.50"', "0.1")
    [line] = CreateOrderRequest.model_validate_json(raw).items
    assert line.unit_price == Decimal("0.1")
    assert line.unit_price.as_tuple() == Decimal("0.1").as_tuple()


@pytest.mark.parametrize(
    ("currency", "price"),
    [("JPY", "1200"), ("JPY", 1200), ("KWD", "1.234"), ("CLF", "1.2345"), ("EUR", "0.5"), ("USD", 9.99)],
)
def test_prices_within_the_currency_minor_units_are_accepted(currency: str, price: Any) -> None:
    payload = valid_payload()
    payload["currency"] = currency
    payload["items"][0]["unit_price"] = price
    assert accept(payload).currency == currency


def test_optional_members_may_be_omitted_or_null() -> None:
    payload = valid_payload()
    del payload["customer"]["phone"]
    del payload["customer"]["shipping_address"]["line2"]
    del payload["customer"]["shipping_address"]["region"]
    order = accept(payload)
    assert order.customer.phone is None
    assert order.customer.shipping_address.region is None
    payload["customer"]["phone"] = None
    payload["customer"]["shipping_address"]["region"] = "Greater London"
    assert accept(payload).customer.shipping_address.region == "Greater London"


def test_boundaries_are_inclusive() -> None:
    payload = valid_payload()
    payload["customer"]["id"] = "c" * 64
    payload["customer"]["name"] = "N" * 200
    payload["customer"]["phone"] = "(+1) 555-0100" + " " * 19
    payload["customer"]["shipping_address"].update(
        line1="L" * 200, line2="L" * 200, city="C" * 100, region="R" * 100, postal_code="P" * 20
    )
    payload["items"] = [item(f"SKU-{n}", 1000 if n % 2 else 1, "1000000.00") for n in range(100)]
    order = accept(payload)
    assert len(order.items) == 100


def test_skus_are_compared_exactly() -> None:
    payload = valid_payload()
    payload["items"] = [item("book-123"), item("BOOK-123")]
    assert len(accept(payload).items) == 2


def test_email_is_normalized_but_not_looked_up() -> None:
    payload = valid_payload()
    payload["customer"]["email"] = "Jane.Doe@Example.COM"
    assert accept(payload).customer.email == "Jane.Doe@example.com"
    payload["customer"]["email"] = "someone@unregistered-domain-4f7a.com"
    assert accept(payload).customer.email.startswith("someone@")


def test_models_are_frozen() -> None:
    order = accept(valid_payload())
    with pytest.raises(ValidationError):
        order.currency = "EUR"  # type: ignore[misc]


def test_a_line_item_alone_skips_the_order_level_checks() -> None:
    line = LineItemIn.model_validate({"sku": "A", "quantity": 1, "unit_price": "1.23456"})
    assert line.unit_price == Decimal("1.23456")


def test_the_schema_documents_fields_and_an_example() -> None:
    schema = CreateOrderRequest.model_json_schema()
    assert schema["examples"][0]["currency"] == "GBP"
    assert schema["additionalProperties"] is False
    line_item = schema["$defs"]["LineItemIn"]
    assert line_item["additionalProperties"] is False
    assert all(field.get("description") for field in line_item["properties"].values())
    assert line_item["properties"]["quantity"]["type"] == "integer"
    assert {branch["type"] for branch in line_item["properties"]["unit_price"]["anyOf"]} == {"string", "number"}
    for name in ("CustomerIn", "AddressIn"):
        assert all(field.get("description") for field in schema["$defs"][name]["properties"].values())


# --- reference data ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["GB", "US", "DE", "JP", "AQ", "SS"])
def test_assigned_country_codes(code: str) -> None:
    assert is_country_code(code)


@pytest.mark.parametrize("code", ["gb", "Gb", "XX", "XK", "GBR", "UK", "EU", "", "G"])
def test_not_country_codes(code: str) -> None:
    assert not is_country_code(code)


@pytest.mark.parametrize("code", ["GBP", "USD", "EUR", "JPY", "KWD", "CHF", "XCG", "ZWG"])
def test_active_currency_codes(code: str) -> None:
    assert is_currency_code(code)


@pytest.mark.parametrize("code", ["gbp", "Gbp", "ABC", "XXX", "XTS", "XAU", "XDR", "BGN", "HRK", "ANG", "GB", ""])
def test_not_order_currency_codes(code: str) -> None:
    assert not is_currency_code(code)


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("GBP", 2), ("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_minor_units(currency: str, digits: int) -> None:
    assert minor_units(currency) == digits


@pytest.mark.parametrize("code", ["gbp", "XXX", "ABC"])
def test_minor_units_of_a_non_currency_is_an_error(code: str) -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        minor_units(code)


def test_the_minor_unit_table_covers_every_active_currency_of_pycountry() -> None:
    """Fails when a pycountry upgrade brings a currency the checked-in ISO 4217 table lacks (or vice versa)."""
    active = {currency.alpha_3 for currency in pycountry.currencies}
    assert active - reference_data.ISO4217_WITHOUT_MINOR_UNITS == reference_data.CURRENCY_CODES
    assert active >= reference_data.ISO4217_WITHOUT_MINOR_UNITS
