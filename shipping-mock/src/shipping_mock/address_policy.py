"""Which addresses the carrier refuses to ship to (a permanent rejection: 422 with a ``reason``).

The rule, in the order it is checked:

* ``country`` is in the embargo list (``KP``, ``IR``, ``SY``) -> reason ``embargoed_destination``.
* ``postal_code`` starts with ``REJECT`` (any case, e.g. ``REJECT-1``) -> reason ``undeliverable_address``.
  This is the hook for tests: any country, a postal code the carrier "does not know".

Besides the rule, the ``reject_rate`` fault rejects a share of otherwise acceptable new
shipments with reason ``address_not_serviceable``.

A rejection is remembered under its ``Idempotency-Key``: the same key gets the same 422 later,
whatever the fault settings are by then.
"""

from __future__ import annotations

from shipping_mock.models import Address, Rejection

EMBARGOED_COUNTRIES: frozenset[str] = frozenset({"KP", "IR", "SY"})
UNDELIVERABLE_POSTAL_CODE_PREFIX = "REJECT"

FAULT_REJECTION = Rejection(
    reason="address_not_serviceable",
    detail="The carrier does not serve this address at the moment.",
)


def rejection_for(address: Address) -> Rejection | None:
    """The reason the carrier will not ship to ``address``, or ``None`` if it will."""
    if address.country in EMBARGOED_COUNTRIES:
        return Rejection(
            reason="embargoed_destination",
            detail=f"The carrier does not ship to country {address.country}.",
        )
    if address.postal_code.upper().startswith(UNDELIVERABLE_POSTAL_CODE_PREFIX):
        return Rejection(
            reason="undeliverable_address",
            detail=f"Postal code {address.postal_code!r} is not a deliverable address.",
        )
    return None
