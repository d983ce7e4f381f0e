"""Running an app: one structured JSON log line per event on stdout, uvicorn bound where the settings say, on
uvloop's event loop and the httptools parser (uvicorn's fast pair, rather than asyncio's loop and h11)."""

import inspect
import logging.config
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["stdout"], "level": "INFO"},
    "loggers": {"uvicorn.access": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}

KEEP_ALIVE_SECONDS = 75
"""Longer than clients keep idle pooled connections: with uvicorn's 5 s default, a client reusing a connection just
as the server closes it sees a reset (seen under a 1,000-order burst)."""

GRACEFUL_SHUTDOWN_SECONDS = 10


def thread_pool_calls(app: FastAPI) -> list[str]:
    """The endpoints and dependencies of `app` that FastAPI would run in its thread pool (a plain `def`, or an
    object whose `__call__` is one): a thread hop on every request that reaches them, which showed in profiles
    under load. Ours are all coroutines; `serve` refuses an app with any of these."""
    routes = list(_api_routes(app.routes))
    if not routes:
        raise LookupError("no API route found: FastAPI keeps its routes elsewhere now, update _api_routes")
    found = {f"{route.path}: {_name_of(call)}"
             for route in routes for call in _calls(route.dependant) if not _runs_on_the_loop(call)}  # fmt: skip
    return sorted(found)


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Also those of included routers: FastAPI 0.165 keeps each behind a wrapper holding `original_router`."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif isinstance(included := getattr(route, "original_router", None), APIRouter):
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    if dependant.call is not None:
        yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _runs_on_the_loop(call: Callable[..., Any]) -> bool:
    return any(inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
               for function in (call, type(call).__call__))  # fmt: skip


def _name_of(call: Callable[..., Any]) -> str:
    return getattr(call, "__qualname__", type(call).__qualname__)


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight get up to GRACEFUL_SHUTDOWN_SECONDS to finish."""
    if blocking := thread_pool_calls(app):
        raise RuntimeError(f"these would run in FastAPI's thread pool, make them coroutines: {blocking}")
    logging.config.dictConfig(LOG_CONFIG)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=LOG_CONFIG,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        loop="uvloop",
        http="httptools",
    )
