"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), handed to routes."""

from typing import Annotated

from fastapi import Depends, Request

from fulfillment_service.handlers import FulfillmentHandlers


def get_fulfillment_handlers(request: Request) -> FulfillmentHandlers:
    handlers: FulfillmentHandlers = request.app.state.fulfillment_handlers
    return handlers


FulfillmentHandlersDep = Annotated[FulfillmentHandlers, Depends(get_fulfillment_handlers)]
