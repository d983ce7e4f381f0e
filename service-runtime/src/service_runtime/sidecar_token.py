"""The two tokens between an app and its Dapr sidecar, both sent as the `dapr-api-token` header.

- Sidecar to app: daprd sends its APP_API_TOKEN variable on every call to its app, and both services check it on
  the endpoints only the sidecar may call (subscriptions, event deliveries). Each service answers a failed check
  in its own error format.
- App to sidecar: daprd refuses every call to its API (health checks excepted) without its DAPR_API_TOKEN. The
  Dapr SDK sends it on its gRPC calls; our own HTTP clients of the sidecar send `sidecar_api_headers()`."""

import secrets

from dapr.conf import settings as dapr_settings
from fastapi.security import APIKeyHeader
from pydantic import SecretStr

APP_API_TOKEN_ENV = "APP_API_TOKEN"  # noqa: S105 (a variable name, not a secret)
APP_API_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 (a header name, not a secret)

sidecar_token_header = APIKeyHeader(
    name=APP_API_TOKEN_HEADER,
    scheme_name="DaprApiToken",
    description=f"The app API token the Dapr sidecar sends on every call (daprd's `{APP_API_TOKEN_ENV}`).",
    auto_error=False,  # a missing header is the service's to answer, in its own error format
)
"""A FastAPI dependency yielding the header's value (None when absent); it also declares the security scheme in
the service's OpenAPI document."""


def is_sidecar_token(presented: str | None, expected: SecretStr) -> bool:
    """Whether `presented` is the app API token, compared in constant time (as bytes: compare_digest refuses str
    with non-ASCII characters, which a header may well contain)."""
    return presented is not None and secrets.compare_digest(presented.encode(), expected.get_secret_value().encode())


def sidecar_api_headers() -> dict[str, str]:
    """The header every HTTP call to our sidecar's API carries: DAPR_API_TOKEN, read where the Dapr SDK reads it
    (its settings, from the environment), so the SDK's calls and ours present the same token. Empty when unset,
    as for a sidecar started without one."""
    token: str | None = dapr_settings.DAPR_API_TOKEN
    return {APP_API_TOKEN_HEADER: token} if token else {}
