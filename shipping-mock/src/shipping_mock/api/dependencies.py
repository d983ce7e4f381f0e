"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shipping_mock.state import CarrierState


# A coroutine, as the services' dependencies are: FastAPI runs a plain `def` dependency in its thread pool, a
# thread hop on every call to the carrier.
async def get_carrier_state(request: Request) -> CarrierState:
    """The state ``create_app`` attached to the application."""
    state = request.app.state.carrier
    if not isinstance(state, CarrierState):
        raise TypeError("the application has no carrier state; build it with shipping_mock.main.create_app")
    return state


CarrierStateDep = Annotated[CarrierState, Depends(get_carrier_state)]
