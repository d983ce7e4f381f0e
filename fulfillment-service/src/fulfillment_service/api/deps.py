"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), and the sidecar's credentials."""

# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
# request that showed in profiles of the event endpoints under load.
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from service_runtime.dead_letters import AbstractDeadLetters
from service_runtime.sidecar_token import is_sidecar_token, sidecar_token_header

from fulfillment_service.config import Settings
from fulfillment_service.handlers import FulfillmentHandlers


async def get_fulfillment_handlers(request: Request) -> FulfillmentHandlers:
    handlers: FulfillmentHandlers = request.app.state.fulfillment_handlers
    return handlers


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


FulfillmentHandlersDep = Annotated[FulfillmentHandlers, Depends(get_fulfillment_handlers)]


async def get_dead_letters(request: Request) -> AbstractDeadLetters:
    dead_letters: AbstractDeadLetters = request.app.state.dead_letters
    return dead_letters


DeadLettersDep = Annotated[AbstractDeadLetters, Depends(get_dead_letters)]
"""Where poison in a bulk delivery goes (service_runtime/dead_letters.py: never answered DROP)."""
SettingsDep = Annotated[Settings, Depends(get_settings)]


async def require_sidecar(settings: SettingsDep, token: Annotated[str | None, Depends(sidecar_token_header)]) -> None:
    """Only our sidecar knows the app API token (APP_API_TOKEN): anyone else calling an event endpoint gets 401."""
    if not is_sidecar_token(token, settings.app_api_token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "only the Dapr sidecar may call this endpoint")


FromSidecar = Depends(require_sidecar)
