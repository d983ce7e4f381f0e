"""`thread_pool_calls` finds what FastAPI would run in its thread pool, and the three apps have none of it."""

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.security import APIKeyHeader
from service_runtime.serving import serve, thread_pool_calls


def plain_dependency(request: Request) -> str:
    return request.url.path


async def coroutine_dependency(request: Request) -> str:
    return request.url.path


def an_app() -> FastAPI:
    app = FastAPI()

    @app.get("/plain-endpoint")
    def plain_endpoint() -> None: ...

    @app.get("/nested")
    async def nested(
        _: Annotated[str, Depends(coroutine_dependency)],
        key: Annotated[str | None, Depends(APIKeyHeader(name="x-key", auto_error=False))],
        path: Annotated[str, Depends(plain_dependency)],
    ) -> None: ...

    @app.get("/on-the-loop")
    async def on_the_loop(_: Annotated[str, Depends(coroutine_dependency)]) -> None: ...

    included = APIRouter(prefix="/included")

    @included.get("/plain-dependency")
    async def included_route(_: Annotated[str, Depends(plain_dependency)]) -> None: ...

    app.include_router(included)
    return app


def test_plain_def_endpoints_and_dependencies_are_found_at_any_depth() -> None:
    assert thread_pool_calls(an_app()) == [
        "/included/plain-dependency: plain_dependency",
        "/nested: plain_dependency",
        "/plain-endpoint: an_app.<locals>.plain_endpoint",
    ]


def test_an_app_whose_routes_it_cannot_see_is_an_error_not_a_pass() -> None:
    with pytest.raises(LookupError):
        thread_pool_calls(FastAPI())


def test_serve_refuses_an_app_with_them() -> None:
    with pytest.raises(RuntimeError, match="plain_dependency"):
        serve(an_app(), host="127.0.0.1", port=0)
