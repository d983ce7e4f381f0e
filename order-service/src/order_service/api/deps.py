"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), handed to routes, and the check
that a call comes from the Dapr sidecar."""

# Dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per
# request that showed in profiles of the event endpoints under load.
from typing import Annotated

from fastapi import Depends, Request
from service_runtime.dead_letters import AbstractDeadLetters
from service_runtime.sidecar_token import APP_API_TOKEN_HEADER, is_sidecar_token, sidecar_token_header

from order_service.api.problems import ProblemError, status_title
from order_service.config import Settings
from order_service.handlers import OrderHandlers


async def get_order_handlers(request: Request) -> OrderHandlers:
    handlers: OrderHandlers = request.app.state.order_handlers
    return handlers


OrderHandlersDep = Annotated[OrderHandlers, Depends(get_order_handlers)]


async def get_dead_letters(request: Request) -> AbstractDeadLetters:
    dead_letters: AbstractDeadLetters = request.app.state.dead_letters
    return dead_letters


DeadLettersDep = Annotated[AbstractDeadLetters, Depends(get_dead_letters)]
"""Where poison in a bulk delivery goes (service_runtime/dead_letters.py: never answered DROP)."""


async def require_sidecar(request: Request, token: Annotated[str | None, Depends(sidecar_token_header)]) -> None:
    """Let the call through only if it carries the sidecar's token; otherwise answer 401 (problem+json)."""
    settings: Settings = request.app.state.settings
    if not is_sidecar_token(token, settings.app_api_token):
        missing = "is missing" if token is None else "does not match"
        raise ProblemError(
            401,
            status_title(401),
            f"Only the Dapr sidecar may call this endpoint: the {APP_API_TOKEN_HEADER} header {missing}.",
            headers={"WWW-Authenticate": "APIKey"},
        )


SidecarOnly = Annotated[None, Depends(require_sidecar)]
"""Declare a parameter of this type (e.g. ``_: SidecarOnly``) on a route only the sidecar may call."""
