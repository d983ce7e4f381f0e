"""The Dapr state API as both services use it: insert-if-absent, and reading the SDK's conflict errors."""

from dapr.aio.clients import DaprClient
from dapr.clients.exceptions import DaprInternalError
from dapr.clients.grpc._state import Concurrency, Consistency, StateOptions

INSERT_IF_ABSENT = StateOptions(concurrency=Concurrency.first_write, consistency=Consistency.strong)
"""First-write without an ETag: on the SQLite store (and the other transactional stores) an insert that fails if
the key exists."""


def is_etag_mismatch(error: DaprInternalError) -> bool:
    """The SDK's save_state turns the sidecar's gRPC status into this error, keeping only the message, which for a
    first-write or ETag conflict reads "failed saving state in state store ...: possible etag mismatch"."""
    return "etag mismatch" in str(error).lower()


async def insert_if_absent(
    client: DaprClient, store: str, key: str, value: str, *, metadata: dict[str, str] | None = None
) -> bool:
    """Store `value` under `key` unless the key exists; True if it was stored."""
    try:
        await client.save_state(store, key, value, options=INSERT_IF_ABSENT, state_metadata=metadata)
    except DaprInternalError as error:
        if not is_etag_mismatch(error):
            raise
        return False
    return True
