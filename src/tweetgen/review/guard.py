"""The review server's door: every request must name the token, come to a loopback host name and
carry a bounded body, or it is refused before any route runs.

- The token is the URL's first path segment (``/TOKEN/...``), compared in constant time; without
  it, 403. It becomes the ``root_path``, so the routes see the rest of the path.
- The ``Host`` header must be ``127.0.0.1`` or ``localhost`` (with the server's port when it is
  known): a page on another site that makes its own name resolve to 127.0.0.1 (DNS rebinding)
  sends its own name and is refused with 403. A request with an ``Origin`` header from another
  origin is refused likewise.
- A body larger than :data:`MAX_BODY` bytes is refused with 413 (by ``Content-Length`` at once,
  else when the streamed body passes the limit); the body is read here, once, and replayed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ALLOWED_NAMES", "MAX_BODY", "Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: the host names a request may name
ALLOWED_NAMES = ("127.0.0.1", "localhost")
#: the largest request body accepted, in bytes
MAX_BODY = 64 * 1024


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class Guard:
    """ASGI middleware: token, host, origin and body size, as the module says."""

    def __init__(self, app: ASGIApp, token: str, *, port: int | None = None) -> None:
        self.app = app
        self.token = token
        self.port = port

    def _host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        if name not in ALLOWED_NAMES:
            return False
        return self.port is None or port == str(self.port)

    def _origin_ok(self, origin: str | None) -> bool:
        if origin is None:
            return True
        parts = urlsplit(origin)
        return parts.scheme == "http" and self._host_ok(parts.netloc)

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        prefix = "/" + self.token
        given = path[1:].split("/", 1)[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await self._refuse(send, 403, "forbidden: open the URL tweetgen review printed")
            return
        if not self._host_ok(_header(scope, b"host")) or not self._origin_ok(
            _header(scope, b"origin")
        ):
            await self._refuse(send, 403, "forbidden: this page answers on 127.0.0.1 only")
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            await self._refuse(send, 413, f"the request body is larger than {MAX_BODY} bytes")
            return
        body = b""
        more = scope["method"] not in ("GET", "HEAD")
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await self._refuse(send, 413, f"the request body is larger than {MAX_BODY} bytes")
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if path == prefix:
            await send(
                {
                    "type": "http.response.start",
                    "status": 307,
                    "headers": [(b"location", (prefix + "/").encode()), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        # the routes see the path after the token (Starlette strips root_path from path)
        await self.app(dict(scope, root_path=prefix), replay, send)
