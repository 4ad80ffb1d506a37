"""``tweetgen review``: serve the review page of a store on 127.0.0.1 (issue 16).

Prints the page's URL (a random port unless ``--port``, a random token in the path) on stdout and
opens it in the browser unless ``--no-browser`` or there is no display; serves until Ctrl-C or
SIGTERM, then exits 0. Errors in one sentence on stderr: a missing store or a bad option exit 2,
a port that cannot be bound exits 1. The app is :mod:`tweetgen.review`.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from .errors import ConfigurationError
from .exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["add_arguments", "main", "run"]

_NEEDS = ("starlette", "uvicorn", "jinja2")


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use 0 (random) to 65535")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``review`` command's options (the logging flags are added by the CLI's own helper)."""
    parser.add_argument(
        "--db",
        default=os.environ.get("TWEETGEN_DB") or "tweetgen.db",
        metavar="PATH|URL",
        help="store: a SQLite file or a postgresql:// URL (default: TWEETGEN_DB, else tweetgen.db)",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        metavar="PORT",
        help="port on 127.0.0.1 (default: 0, a random free port)",
    )
    parser.add_argument(
        "--no-browser",
        dest="no_browser",
        action="store_true",
        help="print the URL only; do not open a browser",
    )


def _has_display() -> bool:
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _open(url: str) -> None:
    import contextlib
    import webbrowser

    with contextlib.suppress(Exception):  # the URL is printed; a browser that fails is not fatal
        webbrowser.open(url, new=2)


def _fail(message: str, code: int) -> int:
    print(f"tweetgen: error: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Serve the review page until interrupted; the exit code."""
    missing = [name for name in _NEEDS if not _importable(name)]
    if missing:
        return _fail(
            f"tweetgen review needs {', '.join(missing)}: pip install 'tweetgen[review]'",
            EXIT_USAGE,
        )
    from .storedb import is_url

    db = str(args.db)
    try:
        if not is_url(db) and not Path(db).expanduser().is_file():
            raise ConfigurationError(
                f"no store at {db}; record calls with tweetgen batch or tweetgen generate --db, "
                "or pass --db PATH|URL"
            )
        if getattr(args, "log_level", None) is not None or hasattr(args, "quiet"):
            _logging(args)
        from .store import Store

        store = Store(db, create=False)
    except ConfigurationError as error:
        from .logs import redact_text

        return _fail(redact_text(str(error)), EXIT_USAGE)
    with store:
        from .review.server import ReviewServer

        try:
            server = ReviewServer(store, port=int(args.port))
        except OSError as error:
            return _fail(
                f"cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}; "
                "pass --port 0 for a free port",
                EXIT_FAILED,
            )
        print(f"tweetgen review: {server.url}", flush=True)
        print("  serving on 127.0.0.1 only; Ctrl-C stops it", file=sys.stderr, flush=True)
        if not getattr(args, "no_browser", False) and _has_display():
            threading.Thread(target=_open, args=(server.url,), daemon=True).start()
        server.serve()
    print("tweetgen review: stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _logging(args: argparse.Namespace) -> None:
    from .commands import _setup_logging

    if not hasattr(args, "command"):
        args.command = "review"
    for name, default in (("log_level", None), ("log_file", None), ("quiet", False)):
        if not hasattr(args, name):
            setattr(args, name, default)
    _setup_logging(args)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tweetgen.review``: the command without the CLI's other commands."""
    parser = argparse.ArgumentParser(
        prog="tweetgen review", description="Review generated tweets in a local web page."
    )
    add_arguments(parser)
    parser.add_argument("--log-level", type=str.upper, metavar="LEVEL")
    parser.add_argument("--log-file", metavar="PATH")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    args.command = "review"
    return run(args)
