"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), and the sidecar's credentials."""

# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
# request that showed in profiles of the event endpoints under load.
import secrets
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from fulfillment_service.config import Settings
from fulfillment_service.handlers import FulfillmentHandlers

APP_API_TOKEN_HEADER = "dapr-api-token"  # noqa: S105 (a header name, not a secret)


async def get_fulfillment_handlers(request: Request) -> FulfillmentHandlers:
    handlers: FulfillmentHandlers = request.app.state.fulfillment_handlers
    return handlers


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


FulfillmentHandlersDep = Annotated[FulfillmentHandlers, Depends(get_fulfillment_handlers)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def require_sidecar(
    settings: SettingsDep, token: Annotated[str | None, Header(alias=APP_API_TOKEN_HEADER)] = None
) -> None:
    """Only our sidecar knows the app API token (APP_API_TOKEN): anyone else calling an event endpoint gets 401."""
    expected = settings.app_api_token.get_secret_value().encode()
    if token is None or not secrets.compare_digest(token.encode(), expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "only the Dapr sidecar may call this endpoint")


FromSidecar = Depends(require_sidecar)
