"""Running an app: one structured JSON log line per event on stdout, uvicorn bound where the settings say, on
uvloop's event loop and the httptools parser (uvicorn's fast pair, rather than asyncio's loop and h11)."""

import logging.config
from typing import Any

import uvicorn
from fastapi import FastAPI

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


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight get up to GRACEFUL_SHUTDOWN_SECONDS to finish."""
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
