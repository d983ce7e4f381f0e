"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), handed to routes, and the check
that a call comes from the Dapr sidecar."""

# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
# request that showed in profiles of the event endpoints under load.
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from order_service.api.problems import ProblemError, status_title
from order_service.config import APP_API_TOKEN_ENV, Settings
from order_service.handlers import OrderHandlers

APP_API_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 (a header name, not a secret)
"""The header daprd sends, with the value of its APP_API_TOKEN variable, on every call to its app."""


async def get_order_handlers(request: Request) -> OrderHandlers:
    handlers: OrderHandlers = request.app.state.order_handlers
    return handlers


OrderHandlersDep = Annotated[OrderHandlers, Depends(get_order_handlers)]


_dapr_api_token = APIKeyHeader(
    name=APP_API_TOKEN_HEADER,
    scheme_name="DaprApiToken",
    description=f"The app API token the Dapr sidecar sends on every call (daprd's `{APP_API_TOKEN_ENV}`).",
    auto_error=False,  # a missing header is answered below, as a problem like every other 401
)


async def require_sidecar(request: Request, token: Annotated[str | None, Depends(_dapr_api_token)]) -> None:
    """Let the call through only if it carries the sidecar's token; otherwise answer 401 (problem+json)."""
    settings: Settings = request.app.state.settings
    expected = settings.app_api_token.get_secret_value().encode()
    # Bytes: compare_digest refuses str with non-ASCII characters, which a header may well contain.
    if token is None or not secrets.compare_digest(token.encode(), expected):
        missing = "is missing" if token is None else "does not match"
        raise ProblemError(
            401,
            status_title(401),
            f"Only the Dapr sidecar may call this endpoint: the {APP_API_TOKEN_HEADER} header {missing}.",
            headers={"WWW-Authenticate": "APIKey"},
        )


SidecarOnly = Annotated[None, Depends(require_sidecar)]
"""Declare a parameter of this type (e.g. ``_: SidecarOnly``) on a route only the sidecar may call."""
