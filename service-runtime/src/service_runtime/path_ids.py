"""The order id as a path segment, for both services' `/{order_id}` routes.

An id reaches the state store as a key, and the stores keep keys of their own beside the orders (outbox and index
pages, idempotency records: each holds a `|`, and Dapr refuses a key with `||`). So a path id is letters, digits,
`-` and `_` only: every id the order service makes (a UUIDv7) is one, no internal key is, and anything else is
answered 422 before a store is asked."""

from typing import Annotated

from fastapi import Path

ORDER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

OrderIdPath = Annotated[
    str,
    Path(pattern=ORDER_ID_PATTERN, description="The order id (a UUIDv7): letters, digits, '-' and '_', 1 to 64."),
]
