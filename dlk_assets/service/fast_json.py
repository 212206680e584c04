"""JSON request bodies parsed by pydantic-core's Rust parser instead of the standard library's.

A batch of 1000 x 384-d vectors is 3-8 MB of JSON (by how many digits the client writes), almost all
floats; `json.loads` took ~190 ms of the ~240 ms a 3 MB batch insert spent in the service (the
layer's own work is ~100 ms), so the seed's 10-15k vectors/s were out of reach however fast the table
was. `pydantic_core.from_json` parses the same body 4-5x faster (8 MB: 26 ms against 139 ms) and
yields the same Python values: NaN and Infinity literals are accepted as the
standard library accepts them (the record validation names their position), big integers stay exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute

_WHERE = re.compile(r"line (\d+) column (\d+)$")


def _offset(text: str, message: str) -> int:
    """The character offset of the parser's `line L column C`, for the error's position."""
    match = _WHERE.search(message)
    if not match:
        return 0
    line, column = int(match.group(1)), int(match.group(2))
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
    return start + column - 1


def parse_json(body: bytes) -> Any:
    """The body's JSON value; malformed JSON raises `json.JSONDecodeError`, as the standard library does."""
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        text = body.decode("utf-8", errors="replace")
        raise json.JSONDecodeError(str(exc), text, _offset(text, str(exc))) from None


class FastJSONRequest(Request):
    """A request whose `json()` uses `parse_json` (FastAPI reads JSON bodies through it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class FastJSONRoute(APIRoute):
    """A route that hands its handler a `FastJSONRequest` (FastAPI's documented custom route class)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(FastJSONRequest(request.scope, request.receive))

        return handle
