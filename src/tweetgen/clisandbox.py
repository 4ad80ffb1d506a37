"""The ``tweetgen sandbox serve`` command's options (the offline Gemini-compatible server)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .cliargs import _Parser, _port, _rate, _ratio, _seconds, _whole
from .clihelp import FAULTS_HELP, _epilog, _wrap

__all__ = ["add_sandbox"]


def add_sandbox(parser: _Parser, command: Callable[..., _Parser]) -> None:
    """Add ``sandbox serve`` to ``parser`` through ``command`` (its subcommand factory)."""
    sandbox = command(
        "sandbox",
        "serve [options]",
        "The offline Gemini-compatible server, with scripted faults, for your own tests.\n\n"
        "subcommands:\n  serve  serve on 127.0.0.1 until interrupted",
    )
    sandbox_sub = sandbox.add_subparsers(
        dest="sandbox_command",
        prog="tweetgen sandbox",
        metavar="SUBCOMMAND",
        help=argparse.SUPPRESS,
    )
    serve: _Parser = sandbox_sub.add_parser(
        "serve",
        usage="%(prog)s [--port PORT] [--faults SCRIPT] [options]",
        description=_wrap(
            "Serve Gemini's generateContent (and an OpenAI-compatible /v1/chat/completions) on "
            "127.0.0.1 until "
            "interrupted (Ctrl-C). Point tweetgen at it with GEMINI_BASE_URL=http://127.0.0.1:PORT "
            "and any "
            "GEMINI_API_KEY."
        ),
        epilog=_epilog(
            "sandbox serve",
            FAULTS_HELP,
        ),
    )
    parser.commands["sandbox serve"] = serve
    serve.add_argument(
        "--port", type=_port, default=8765, help="port on 127.0.0.1; 0 picks a free one"
    )
    serve.add_argument(
        "--faults", default="", metavar="SCRIPT", help="fault script, e.g. 503*2,ok,429:26s,drop"
    )
    serve.add_argument(
        "--latency", type=_seconds, default=0.0, metavar="SECONDS", help="wait before every answer"
    )
    serve.add_argument(
        "--require-key", metavar="KEY", help="answer API_KEY_INVALID unless x-goog-api-key is KEY"
    )
    serve.add_argument(
        "--error-rate",
        type=_ratio,
        default=0.0,
        metavar="RATIO",
        help="answer 503 at random with this probability",
    )
    serve.add_argument(
        "--seed", type=_whole, metavar="N", help="seed for --error-rate (reproducible faults)"
    )
    serve.add_argument(
        "--quota-rpm",
        type=_rate,
        metavar="N",
        help="a project quota: answer 429 RESOURCE_EXHAUSTED above N requests per minute",
    )
    serve.add_argument(
        "--quota-rps",
        type=_rate,
        metavar="N",
        help="the same quota per second (for fast tests)",
    )
    serve.add_argument(
        "--quota-rpd",
        type=_whole,
        metavar="N",
        help="a daily quota: answer 429 with Gemini's per-day quotaId above N requests a day",
    )
    serve.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus /metrics of the sandbox on this port",
    )
