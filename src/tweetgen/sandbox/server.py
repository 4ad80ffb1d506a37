"""The sandbox: a real HTTP server on 127.0.0.1 speaking Gemini's ``generateContent``, its Batch and
Files APIs (:mod:`.batches`, :mod:`.files`) and OpenAI's chat, offline."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from . import jobroutes
from .batches import INLINE_LIMIT, Batches, BatchOptions
from .chat import ChatRoute
from .faults import Fault, FaultScript, parse_faults
from .files import FileStore
from .gemini import GeminiRoute, error_body
from .quota import Quota

__all__ = ["RecordedRequest", "SandboxServer", "default_sandbox"]

_PATH = re.compile(
    r"^(?P<prefix>.*?)/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+):generateContent$"
)
_CHAT_PATH = re.compile(r"^(?P<prefix>.*?)/v1/chat/completions$")


@dataclass(frozen=True)
class RecordedRequest:
    """What the sandbox received (for tests and ``sandbox serve`` users)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


class _Dialect(Protocol):
    """The API one request speaks: how to read its key and answer each fault."""

    def key(self, headers: Mapping[str, str]) -> str: ...
    def invalid(self, body: object) -> tuple[int, dict[str, Any]] | None: ...
    def status(self, fault: Fault) -> tuple[int, dict[str, Any], dict[str, str] | None]: ...
    def invalid_key(self) -> tuple[int, dict[str, Any]]: ...
    def refused(self, quota: Quota, delay: float) -> tuple[int, dict[str, Any], dict[str, str]]: ...
    def echo_key(self, key: str) -> tuple[int, dict[str, Any]]: ...
    def answer(self, body: dict[str, Any] | None, kind: str) -> dict[str, Any]: ...
    def blocked(self) -> dict[str, Any]: ...
    def max_tokens(self) -> dict[str, Any]: ...


def _route(path: str, prefix: str, body: object) -> _Dialect | None:
    """The dialect of a POST path under the sandbox's prefix, or ``None`` for an unknown path."""
    path = path.split("?", 1)[0]
    gemini = _PATH.match(path)
    if gemini is not None and gemini.group("prefix") == prefix:
        return GeminiRoute(gemini.group("model"), gemini.group("version"))
    chat = _CHAT_PATH.match(path)
    if chat is not None and chat.group("prefix") == prefix:
        return ChatRoute.for_body(body)
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self.request)

    def finish(self) -> None:
        self.server.connections.discard(self.request)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        """Stay quiet: the client logs every request."""

    def _send(
        self,
        status: int,
        payload: bytes,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.server.sandbox.count(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _reply(self, reply: jobroutes.Reply) -> None:
        status, payload, headers = reply
        if isinstance(payload, bytes):
            kind = "application/octet-stream" if payload else "text/plain"
            self._send(status, payload, content_type=kind, headers=headers)
        else:
            self._json(status, payload, headers=headers)

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def do_DELETE(self) -> None:
        reply = jobroutes.delete(self.server.sandbox, self.path, self._headers())
        self._reply(reply or (404, error_body(404, f"no such path {self.path}"), {}))

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        quota = sandbox.quota
        reply = jobroutes.get(sandbox, self.path, self._headers())
        models = _models(self.path, sandbox.prefix) if reply is None else None
        if reply is not None:
            self._reply(reply)
        elif models is not None:
            self._json(*models)
        elif self.path.rstrip("/").endswith("/healthz"):
            self._json(200, {"status": "ok"})
        elif self.path.rstrip("/").endswith("/quota"):
            if quota is None:
                self._json(404, error_body(404, "no quota: serve with --quota-rpm or --quota-rps"))
            else:
                self._json(200, quota.stats().as_dict())
        else:
            self._json(404, error_body(404, f"no such path {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        sandbox = self.server.sandbox
        headers = self._headers()
        reply = jobroutes.post(sandbox, self.path, headers, raw)
        if reply is not None:  # the batch and files APIs (an upload's bytes are not recorded)
            sandbox.record(RecordedRequest(self.path, headers, None))
            self._reply(reply)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        sandbox.record(RecordedRequest(self.path, headers, body))
        route = _route(self.path, sandbox.prefix, body)
        if route is None:
            message = (
                f"no such method {self.path}; "
                "use /v1beta/models/MODEL:generateContent or /v1/chat/completions"
            )
            self._json(404, error_body(404, message))
            return
        invalid = route.invalid(body)
        if invalid is not None:
            self._json(*invalid)
            return
        if sandbox.require_key is not None and route.key(headers) != sandbox.require_key:
            self._fault(Fault("invalid-key"), route, body, headers)
            return
        delay = sandbox.quota.admit() if sandbox.quota is not None else None
        if delay is not None:
            assert sandbox.quota is not None
            self._json(*route.refused(sandbox.quota, delay))
            return
        fault = sandbox.faults.next()
        if sandbox.latency:
            sandbox.stopping.wait(sandbox.latency)
        self._fault(fault, route, body, headers)

    def _fault(
        self, fault: Fault, route: _Dialect, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> None:
        kind = fault.kind
        if kind in ("hang", "ok") and fault.seconds:
            self.server.sandbox.stopping.wait(fault.seconds)
        if kind == "status":
            status, payload, extra = route.status(fault)
            self._json(status, payload, headers=extra)
        elif kind == "invalid-key":
            self._json(*route.invalid_key())
        elif kind == "echo-key":
            self._json(*route.echo_key(route.key(headers)))
        elif kind == "drop":
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b'Content-Length: 4096\r\n\r\n{"candid'
            )
            self.wfile.flush()
            self.close_connection = True
        elif kind == "html":
            self._send(
                200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"
            )
        elif kind == "blocked":
            self._json(200, route.blocked())
        elif kind == "max-tokens":
            self._json(200, route.max_tokens())
        else:
            tier = getattr(route, "answer_headers", None)  # the tier that answered (Gemini)
            self._json(
                200,
                route.answer(body, kind if kind != "hang" else "ok"),
                headers=tier(body) if tier is not None else None,
            )


@functools.cache
def _models_answer() -> Any:
    """``answer_models`` of :mod:`.models`, or ``None`` while that module is not there."""
    try:
        from .models import answer_models  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the models listing lands separately (issue 15)
        return None
    return answer_models


def _models(path: str, prefix: str) -> tuple[int, dict[str, Any]] | None:
    """The models listing (``GET v1beta/models``), when :mod:`.models` is there to answer it."""
    answer = _models_answer()
    answered: tuple[int, dict[str, Any]] | None = answer(path, prefix) if answer else None
    return answered


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # batches open many connections at once
    sandbox: SandboxServer
    connections: set[socket.socket]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (timeouts, dropped connections) is normal here; stay quiet."""


class SandboxServer:
    """A Gemini- and OpenAI-compatible server in a background thread; ``url`` is its base URL.

    A project quota (:mod:`tweetgen.sandbox.quota`): ``quota_rpm=N`` or ``quota_rps=N`` (a whole
    number above 0), or ``quota=Quota(...)`` for another window or an injected clock; at most one.
    Above it every client (any key, any connection, both dialects) gets 429 RESOURCE_EXHAUSTED;
    ``server.quota`` counts (``stats()``, ``history()``) and ``GET /quota`` answers its stats.

    Gemini batch jobs (:mod:`.batches`): ``batch=BatchOptions(...)`` says how they move (the
    tests change ``server.batches.options`` as they go); ``server.batches`` counts submissions,
    polls and cancels; ``batch_inline_limit`` is the largest inline request (20 MB, as Gemini's) and
    ``file_limit`` the largest upload (2 GB). ``server.files`` holds the uploaded files.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: str | list[Fault] = (),  # type: ignore[assignment]
        latency: float = 0.0,
        require_key: str | None = None,
        prefix: str = "",
        quota: Quota | None = None,
        quota_rpm: float | None = None,
        quota_rps: float | None = None,
        batch: BatchOptions | None = None,
        batch_inline_limit: int = INLINE_LIMIT,
        file_limit: int | None = None,
    ) -> None:
        if [quota, quota_rpm, quota_rps].count(None) < 2:
            raise ValueError("choose one quota: per minute or per second, not both")
        if quota_rpm is not None:
            quota = Quota.per_minute(quota_rpm)
        elif quota_rps is not None:
            quota = Quota.per_second(quota_rps)
        self.quota = quota
        self.faults = FaultScript(parse_faults(faults) if isinstance(faults, str) else faults)
        self.latency = latency
        self.require_key = require_key
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.requests: list[RecordedRequest] = []
        self.files = FileStore() if file_limit is None else FileStore(limit=file_limit)
        self.batches = Batches(self.files, batch, limit=batch_inline_limit)
        self.answers: dict[int, int] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _Handler)
        self._httpd.sandbox = self
        self._httpd.connections = set()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give a client (before the version segment)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def count(self, status: int) -> None:
        """Count an answer by status (what ``sandbox serve --metrics-port`` exports)."""
        with self._lock:
            self.answers[status] = self.answers.get(status, 0) + 1

    def record(self, request: RecordedRequest) -> None:
        """Remember a request."""
        with self._lock:
            self.requests.append(request)

    def script(self, spec: str) -> None:
        """Append a fault script (see :mod:`tweetgen.sandbox.faults`)."""
        self.faults.extend(parse_faults(spec))

    def start(self) -> SandboxServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.01,), name="tweetgen-sandbox", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        for conn in list(self._httpd.connections):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_default: SandboxServer | None = None
_default_lock = threading.Lock()


def default_sandbox() -> SandboxServer:
    """The process-wide sandbox without faults, started on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SandboxServer().start()
        return _default
