"""Refuse request bodies over a size limit before they are read into memory (ASGI middleware)."""

from __future__ import annotations

import json

from dlk_assets.vectors.errors import VectorServiceError


def _too_large(max_bytes: int) -> VectorServiceError:
    return VectorServiceError("REQUEST_TOO_LARGE", f"request body is larger than {max_bytes} bytes", {"max_bytes": max_bytes})


class BodySizeLimit:
    """413 `REQUEST_TOO_LARGE` for a declared Content-Length over `max_bytes`, or once a streamed body passes it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await self._refuse(send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Raised inside the app while it reads the body: its VectorServiceError handler answers 413.
                    raise _too_large(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _refuse(self, send):
        error = _too_large(self.max_bytes)
        body = json.dumps(error.body()).encode()
        await send({"type": "http.response.start", "status": error.status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
