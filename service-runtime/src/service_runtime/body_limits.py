"""ASGI middleware that turns away request bodies an app will not read: too large (413) or of a media type the
path does not take (415), answered as RFC 9457 problems.

It runs before FastAPI reads the body, so an oversized body is never buffered whole: a declared Content-Length
over the limit is refused at once, and a chunked body is counted as it streams and refused once it passes the
limit. Every path an app serves falls under one of its limits (the longest matching path prefix; the one for
"/" is required), so no endpoint that takes a body is left unguarded.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_MEDIA_TYPES = frozenset({"application/json"})


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int
    media_types: frozenset[str] | None = JSON_MEDIA_TYPES
    """The media types a body may have (lowercase, without parameters); None takes any."""


SIDECAR_DELIVERIES = BodyLimit(max_bytes=16 * 1024 * 1024, media_types=None)
"""The event endpoints, which only the app's own sidecar may call (app API token): a bulk delivery of up to 100
events, each at most an order of 64 KiB in its CloudEvent envelope, stays well under 16 MiB. Dapr chooses the media
type (the bulk envelope, a single CloudEvent), so any is taken; the endpoint's parser refuses what it cannot read."""


class _TooLargeError(HTTPException):
    """Raised from inside the body stream. An HTTPException, because FastAPI's body reader turns any other
    exception into a 400 and re-raises only these (the app's problem handlers then answer 413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The request body exceeds {max_bytes} bytes.")


class RequestBodyLimits:
    def __init__(self, app: ASGIApp, *, limits: Mapping[str, BodyLimit]) -> None:
        if "/" not in limits:
            raise ValueError("body limits need one for '/', the paths no longer prefix names")
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: len(item[0]), reverse=True)

    def limit_of(self, path: str) -> BodyLimit:
        return next(limit for prefix, limit in self.limits if path.startswith(prefix))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope["path"])
        headers = Headers(scope=scope)
        declared_length = headers.get("content-length")
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if limit.media_types is not None and media_type not in limit.media_types:
            if declared_length is None and "transfer-encoding" in headers:
                # Chunked: empty, perhaps. A sidecar forwards every invocation so, a bodiless POST included
                # (daprd's HTTP channel hands Go's client a reader of unknown length).
                first = await receive()
                if first["type"] == "http.request" and not first.get("body") and not first.get("more_body"):
                    await self.app(scope, _replaying(first, receive), send)
                    return
                declared_length = "chunked"
            if declared_length is not None and declared_length != "0":
                accepted = ", ".join(sorted(limit.media_types))
                await _problem(send, 415, "Unsupported Media Type", f"The request body must be {accepted}.")
                return
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit.max_bytes:
            await _problem(send, 413, "Content Too Large", f"The request body exceeds {limit.max_bytes} bytes.")
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.max_bytes:
                    raise _TooLargeError(limit.max_bytes)
            return message

        await self.app(scope, counting_receive, send)


def _replaying(first: Message, receive: Receive) -> Receive:
    """`receive` with `first`, already taken from it, handed out again first."""
    pending = [first]

    async def replaying_receive() -> Message:
        return pending.pop() if pending else await receive()

    return replaying_receive


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
