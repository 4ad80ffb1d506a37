"""The ``tweetgen`` command: results on stdout, logs and notices on stderr; exit 0, 1 (failed) or 2
(bad input)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .cliargs import (
    _add_logging,
    _add_provider,
    _add_request,
    _add_retry,
    _default_db,
    _Parser,
    _port,
    _positive_seconds,
    _rate,
    _seconds,
    _tokens,
    _whole,
)
from .clihelp import (
    COMMANDS_HELP,
    ENVIRONMENT,
    EXIT_CODES,
    FLAGS,
    SHORT_ENVIRONMENT,
    _epilog,
    _wrap,
)
from .clihelp import DEFAULT_BASE_DELAY as DEFAULT_BASE_DELAY
from .clihelp import DEFAULT_MAX_DELAY as DEFAULT_MAX_DELAY
from .clihelp import DEFAULT_MAX_RETRIES as DEFAULT_MAX_RETRIES
from .clihelp import DEFAULT_MAX_RETRY_AFTER as DEFAULT_MAX_RETRY_AFTER
from .clihelp import EXAMPLES as EXAMPLES
from .clihelp import FAULT_KINDS as FAULT_KINDS
from .clisandbox import add_sandbox
from .clivoice import add_voice
from .errors import ConfigurationError, TweetGenError
from .exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .reviewcmd import add_arguments as review_arguments

__all__ = ["main"]


def _parser() -> _Parser:
    parser = _Parser(
        prog="tweetgen",
        usage="%(prog)s COMMAND [options]",
        description="Tweets from Gemini that keep coming when the API does not cooperate, or "
        "offline from the "
        f"sandbox.\n\n{COMMANDS_HELP}",
        epilog=_epilog("tweetgen", ENVIRONMENT, EXIT_CODES),
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + _version())
    sub = parser.add_subparsers(
        dest="command", prog="tweetgen", metavar="COMMAND", help=argparse.SUPPRESS
    )

    def command(name: str, usage: str, description: str, *sections: str) -> _Parser:
        child: _Parser = sub.add_parser(
            name,
            usage=f"%(prog)s {usage}",
            description=_wrap(description),
            epilog=_epilog(name, *sections),
        )
        parser.commands[name] = child
        return child

    gen = command(
        "generate",
        "--topic TOPIC [options]",
        "Generate a tweet (or --variants N different ones) and print it on stdout; logs and "
        "notices go to stderr.",
        SHORT_ENVIRONMENT,
        EXIT_CODES,
    )
    _add_request(gen, max_words=25)
    gen.add_argument(
        "--variants",
        type=_whole,
        default=1,
        metavar="N",
        help="N different tweets from one call, best first, 1 to 8",
    )
    _add_retry(gen)
    _add_logging(gen)

    thread = command(
        "thread",
        "--topic TOPIC [--tweets N] [options]",
        "Generate a numbered thread (1/5, 2/5, ...) in one call, every tweet checked; print it on "
        "stdout.",
        SHORT_ENVIRONMENT,
        EXIT_CODES,
    )
    _add_request(thread, max_words=40)
    thread.add_argument(
        "--tweets", type=_whole, default=5, metavar="N", help="tweets in the thread, 2 to 25"
    )
    thread.add_argument(
        "--no-numbering", dest="numbering", action="store_false", help="no 1/5 counters"
    )
    _add_retry(thread)
    _add_logging(thread)

    batch = command(
        "batch",
        "INPUT -o OUTPUT [options]",
        "Generate one tweet per input row, --concurrency calls at a time. Every call is committed "
        "to a SQLite store "
        "(--db): rerunning the same command skips the rows already done and reports those that "
        "failed; "
        "--retry-failed calls them again.",
        SHORT_ENVIRONMENT,
        EXIT_CODES,
    )
    batch.add_argument(
        "input",
        metavar="INPUT",
        help="CSV with a topic column (and optionally id, tone, max_words, hashtags, emoji, ...), "
        "JSON Lines, or text "
        "(one topic a line)",
    )
    batch.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="JSON Lines, or CSV when the name ends in .csv; - for stdout (required)",
    )
    batch.add_argument(
        "--input-format", choices=("csv", "jsonl", "txt"), help="(default: from INPUT's extension)"
    )
    batch.add_argument(
        "--format",
        dest="output_format",
        choices=("jsonl", "csv"),
        help="(default: from OUTPUT's extension)",
    )
    batch.add_argument(
        "--concurrency", type=_whole, default=8, metavar="N", help="calls in flight, 1 to 256"
    )
    batch.add_argument(
        "--rpm",
        type=_rate,
        metavar="N",
        help="client-side limit, requests per minute (default: none)",
    )
    batch.add_argument(
        "--tpm",
        type=_tokens,
        metavar="N",
        help="client-side limit, tokens per minute: a request counts its prompt's characters / 4 "
        "plus its output cap until its answer reports the usage (default: none)",
    )
    batch.add_argument(
        "--retry-failed",
        action="store_true",
        help="call again the rows that failed in an earlier run",
    )
    batch.add_argument(
        "--db",
        default=_default_db(),
        metavar="PATH|URL",
        help="store to record and resume from: a SQLite file or a postgresql:// URL "
        "(default: TWEETGEN_DB, else tweetgen.db)",
    )
    batch.add_argument(
        "--workers",
        type=_whole,
        metavar="N",
        help="local processes sharing the rows, 1 to 64 (default: the number of cores)",
    )
    batch.add_argument(
        "--lease",
        type=_positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="how long a worker holds a row without renewing it before another may take it over",
    )
    batch.add_argument(
        "--wait",
        action="store_true",
        help="when another run is using the store, wait for it to end instead of stopping (exit 2) "
        "at once",
    )
    batch.add_argument("--voice", metavar="NAME", help="write in a voice (tweetgen voice list)")
    batch.add_argument(
        "--via",
        choices=("sync", "gemini-batch"),
        default="sync",
        help="sync: one generateContent call per row (default); gemini-batch: the rows go into "
        "one Gemini Batch job (half the price, answers within the deadline)",
    )
    batch.add_argument(
        "--batch-deadline",
        type=_positive_seconds,
        default=24 * 3600.0,
        metavar="SECONDS",
        help="with --via gemini-batch: cancel the job after this long and generate the rows still "
        "missing one call at a time (default: 86400)",
    )
    batch.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus /metrics on 127.0.0.1:PORT while running",
    )
    _add_provider(batch)
    _add_retry(batch, jitter="full", rate_limits=True, budget=0.2)
    _add_logging(batch)

    stats = command(
        "stats",
        "[--db PATH|URL] [--since WHEN] [--json]",
        "Retry metrics from the store: calls, success on the first attempt and after retries, "
        "attempts, waits, "
        "errors by status and type, latency percentiles.",
        EXIT_CODES,
    )
    stats.add_argument(
        "--db",
        default=_default_db(),
        metavar="PATH|URL",
        help="store: a SQLite file or a postgresql:// URL (default: TWEETGEN_DB, else tweetgen.db)",
    )
    stats.add_argument(
        "--since",
        metavar="WHEN",
        help="only calls since a date or an age: 2026-11-30, 2026-11-30T10:00, 1h, 30m, 7d",
    )
    stats.add_argument("--json", action="store_true", help="print JSON")

    demo = command(
        "demo",
        "[options]",
        "Run the seed's demo: a normal call (Gemini with a key, else the sandbox), then a 503 "
        "retried to success, "
        "a 401 and a 429 not retried, on the sandbox. The same as python main.py.",
        EXIT_CODES,
    )
    _add_logging(demo)

    models = command(
        "models",
        "[--json] [options]",
        "The models your key can use (GET /v1beta/models) with their input and output token "
        "limits; the offline sandbox's without a key.",
        SHORT_ENVIRONMENT,
        EXIT_CODES,
    )
    models.add_argument("--json", action="store_true", help="print JSON")
    models.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time the listing may take in all (default: TWEETGEN_TIMEOUT, else 30)",
    )
    _add_logging(models)

    review = command(
        "review",
        "[--db PATH|URL] [--port PORT] [--no-browser]",
        "Review generated tweets in a local web page: approve, reject, edit (checked as X counts), "
        "regenerate, export as CSV or JSON Lines; a dashboard of tweetgen stats. Served on "
        "127.0.0.1 only, behind a random token in the printed URL (pip install "
        "'tweetgen[review]').",
        EXIT_CODES,
    )
    review_arguments(review)
    _add_logging(review)

    add_voice(parser, command)
    add_sandbox(parser, command)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments, or a usage error (exit 2) naming the command's option that was misspelt."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.error(
            "choose a command: generate, thread, batch, stats, models, review, voice, demo or "
            "sandbox"
        )
    name = args.command
    if name == "sandbox":
        if args.sandbox_command is None:
            parser.commands["sandbox"].error("choose a subcommand: serve")
        name = "sandbox serve"
    if extra:
        parser.commands[name].unknown(extra)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parse(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to print a command to run again
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM stops a run as Ctrl-C does
    except ValueError:  # not the main thread (embedded use): leave signals alone
        previous = None
    try:
        return _run(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    from .commands import COMMANDS
    from .events import unexpected_error
    from .logs import redact_text

    try:
        return COMMANDS[args.command](args)
    except ConfigurationError as error:
        flag = FLAGS.get(error.setting or "")
        print(
            f"tweetgen: error: {flag + ': ' if flag else ''}{redact_text(str(error))}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except TweetGenError as error:
        attempts = (
            f" (after {error.attempts} attempt{'s' if error.attempts != 1 else ''})"
            if error.attempts
            else ""
        )
        who = (
            "the circuit breaker will try again in"
            if error.stopped_by == "circuit breaker"
            else "the server asked to wait"
        )
        wait = f"; {who} {error.retry_after:g}s" if error.retry_after else ""
        print(f"tweetgen: failed{attempts}: {redact_text(str(error))}{wait}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("tweetgen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # a bug: one clear line here, the traceback in the log file
        unexpected_error(error)
        print(
            f"tweetgen: unexpected error: {type(error).__name__}: {redact_text(str(error))}",
            file=sys.stderr,
        )
        return EXIT_FAILED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
