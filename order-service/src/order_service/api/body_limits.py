"""ASGI middleware that turns away request bodies the API will not read: too large (413) or not JSON (415).

It runs before FastAPI reads the body, so an oversized body is never buffered whole. Dapr's own deliveries
(application/cloudevents+json on /events/...) are outside the guarded path prefix.
"""

import json

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _TooLargeError(HTTPException):
    """Raised from inside the body stream. An HTTPException, because FastAPI's body reader turns any other
    exception into a 400 and re-raises only these (the problem handlers then answer 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")


class RequestBodyLimits:
    def __init__(self, app: ASGIApp, *, max_bytes: int, path_prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_prefix = path_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _BODY_METHODS
            or not scope["path"].startswith(self.path_prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared_length = headers.get("content-length")
        has_body = "transfer-encoding" in headers or (declared_length is not None and declared_length != "0")
        if has_body and headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
            await _problem(send, 415, "Unsupported Media Type", "The request body must be application/json.")
            return
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > self.max_bytes:
            await _problem(send, 413, "Content Too Large", f"The request body exceeds {self.max_bytes} bytes.")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLargeError(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
