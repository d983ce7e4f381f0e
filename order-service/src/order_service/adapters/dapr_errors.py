"""Reading the Dapr SDK's errors."""

from dapr.clients.exceptions import DaprInternalError


def is_etag_mismatch(error: DaprInternalError) -> bool:
    """The SDK's save_state turns the sidecar's gRPC status into this error, keeping only the message, which for a
    first-write or ETag conflict reads "failed saving state in state store ...: possible etag mismatch"."""
    return "etag mismatch" in str(error).lower()
