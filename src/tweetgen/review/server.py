"""Serving the review app on 127.0.0.1 with uvicorn: one process, bounded, stopped cleanly.

The socket is bound here (port 0: a random free port) so the URL, with its random token, is known
before serving starts. Bounded: at most :data:`MAX_CONNECTIONS` connections at once (more get
503), idle keep-alive connections closed after 5 s, request heads of at most 16 KiB, bodies of at
most :data:`~tweetgen.review.guard.MAX_BODY` bytes (the guard). SIGINT and SIGTERM stop it
gracefully (uvicorn's handlers, in the main thread): requests in flight get
:data:`GRACE_SECONDS`, running regenerations as long again.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..store import Store
from .regenerate import EngineFactory, default_engine

__all__ = ["GRACE_SECONDS", "MAX_CONNECTIONS", "ReviewServer"]

MAX_CONNECTIONS = 64
GRACE_SECONDS = 5.0
HOST = "127.0.0.1"


def _quiet_server(uvicorn: Any) -> Any:
    """uvicorn's Server whose SIGINT/SIGTERM handlers stop it and are then restored, without
    raising the signal again afterwards (uvicorn's own does, ending the process with the signal):
    stopping the review page is its normal end, exit 0."""

    class Server(uvicorn.Server):  # type: ignore[misc]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


@dataclass
class ReviewServer:
    """The review page of ``store`` on ``127.0.0.1:port`` (0: random); ``url`` once bound."""

    store: Store
    port: int = 0
    engine: EngineFactory = default_engine
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def __post_init__(self) -> None:
        from .app import create_app

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((HOST, self.port))
            self._socket.listen(128)
        except OSError:
            self._socket.close()
            raise
        self.port = int(self._socket.getsockname()[1])
        self.app = create_app(self.store, self.token, port=self.port, engine=self.engine)
        self._server = self._uvicorn()
        self._thread: threading.Thread | None = None

    def _uvicorn(self) -> object:
        import uvicorn

        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=int(GRACE_SECONDS),
            h11_max_incomplete_event_size=16 * 1024,
            lifespan="off",
            server_header=False,
        )
        return _quiet_server(uvicorn)(config)

    @property
    def url(self) -> str:
        """The page's address, token included."""
        return f"http://{HOST}:{self.port}/{self.token}/"

    def serve(self) -> None:
        """Serve until SIGINT or SIGTERM (in the main thread) or :meth:`stop`; then wait for the
        running regenerations."""
        import uvicorn

        server = self._server
        assert isinstance(server, uvicorn.Server)
        try:
            server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self.app_jobs_wait()

    def app_jobs_wait(self) -> None:
        """Give the running regenerations :data:`GRACE_SECONDS` to end."""
        review = getattr(getattr(self.app, "app", None), "state", None)
        jobs = getattr(getattr(review, "review", None), "jobs", None)
        if jobs is not None:
            jobs.wait(GRACE_SECONDS)

    def start(self) -> ReviewServer:
        """Serve in a background thread (tests, the benchmark); returns once it accepts."""
        import uvicorn

        server = self._server
        assert isinstance(server, uvicorn.Server)
        self._thread = threading.Thread(target=self.serve, name="tweetgen-review", daemon=True)
        self._thread.start()
        return self

    @property
    def started(self) -> bool:
        """Whether uvicorn is accepting connections."""
        return bool(getattr(self._server, "started", False))

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to stop and wait up to ``timeout`` seconds for it."""
        self._server.should_exit = True  # type: ignore[attr-defined]
        if self._thread is not None:
            self._thread.join(timeout)
