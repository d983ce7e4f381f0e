"""FastAPI dependencies: the use cases built once in the lifespan (see main.py), handed to routes."""

from typing import Annotated

from fastapi import Depends, Request

from order_service.handlers import OrderHandlers


def get_order_handlers(request: Request) -> OrderHandlers:
    handlers: OrderHandlers = request.app.state.order_handlers
    return handlers


OrderHandlersDep = Annotated[OrderHandlers, Depends(get_order_handlers)]
