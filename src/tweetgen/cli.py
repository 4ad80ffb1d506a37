"""The ``tweetgen`` command: results on stdout, logs and notices on stderr; exit 0, 1 (failed) or 2 (bad input)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from .config import DEFAULT_LOG_FILE, PROVIDERS
from .errors import ConfigurationError, TweetGenError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")  # as tweetgen.logs.LEVELS, without importing structlog at --help

#: the option that sets each library setting: a ConfigurationError's ``setting`` (a Python parameter, never shown)
#: is shown as this flag in front of the message, which names the setting in words (``--max-words: the word ...``)
FLAGS = {
    "topic": "--topic",
    "tone": "--tone",
    "max_words": "--max-words",
    "hashtags": "--hashtags",
    "emoji": "--emoji",
    "audience": "--audience",
    "call_to_action": "--cta",
    "language": "--language",
    "link": "--link",
    "banned_phrases": "--ban",
    "seed": "--seed",
    "temperature": "--temperature",
    "template": "--template",
    "templates_file": "--templates-file",
    "regenerations": "--regenerations",
    "variants": "--variants",
    "thread": "--tweets",
    "numbering": "--no-numbering",
    "model": "--model",
    "provider": "--provider",
    "timeout": "--timeout",
    "max_response_bytes": "--max-response-bytes",
    "log_file": "--log-file",
    "log_level": "--log-level",
}


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


PROVIDER_HELP = (
    f"{', '.join(PROVIDERS)}, or a fallback chain such as gemini,openai (default: TWEETGEN_PROVIDER or auto)"
)


def _providers(text: str) -> str:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown or not all(names):
        raise argparse.ArgumentTypeError(f"unknown provider in {text!r}; use {', '.join(PROVIDERS)} or a chain a,b")
    return ",".join(names)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _add_logging(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument("--log-level", type=str.upper, choices=LEVELS, help="default: TWEETGEN_LOG_LEVEL or INFO")
    group.add_argument(
        "--log-file", help=f"JSON Lines log file (default: TWEETGEN_LOG_FILE or {DEFAULT_LOG_FILE}; '' for none)"
    )
    group.add_argument(
        "--quiet", "-q", action="store_true", help="no log output on stderr (the log file is still written)"
    )


def _ratio(text: str) -> float:
    value = _positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a ratio from 0 to 1, got {text!r}")
    return value


def _add_retry(
    parser: argparse.ArgumentParser, *, jitter: str = "none", rate_limits: bool = False, budget: float = 0.1
) -> None:
    group = parser.add_argument_group("retries")
    group.add_argument("--max-retries", type=_count, default=3, help="retries after the first attempt (default 3)")
    group.add_argument("--base-delay", type=_positive_float, help="seconds before the first retry (default 1)")
    group.add_argument("--max-delay", type=_positive_float, help="cap on one wait (default 10)")
    group.add_argument(
        "--jitter", choices=("none", "full", "equal", "decorrelated"), default=jitter, help=f"default {jitter}"
    )
    group.add_argument("--deadline", type=_positive_float, help="seconds for all attempts and waits together")
    group.add_argument(
        "--max-response-bytes",
        type=_count,
        help="largest answer read, counted after decompression (TWEETGEN_MAX_RESPONSE_BYTES; default 8388608)",
    )
    group.add_argument(
        "--retry-rate-limits",
        action=argparse.BooleanOptionalAction,
        default=rate_limits,
        help=f"retry 429s, waiting as long as the server asks (default {'on' if rate_limits else 'off'})",
    )
    group.add_argument(
        "--max-retry-after", type=_positive_float, help="longest server-requested wait to honour (default 60)"
    )
    group.add_argument("--engine", choices=("custom", "tenacity"), default="custom", help="retry loop (same behaviour)")
    group.add_argument(
        "--retry-budget",
        type=_ratio,
        default=budget,
        help=f"retries allowed as a share of requests, plus a small reserve; 0 turns the budget off (default {budget})",
    )
    group.add_argument(
        "--circuit-breaker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail fast while the API keeps failing (default on)",
    )


def _add_request(parser: argparse.ArgumentParser, *, max_words: int) -> None:
    parser.add_argument("--topic", required=True, help="what to write about")
    parser.add_argument(
        "--tone", default="professional", help="professional, casual, witty, inspirational, informative"
    )
    parser.add_argument("--max-words", type=int, default=max_words, help=f"1-60 per tweet (default {max_words})")
    parser.add_argument("--hashtags", default="auto", help="none, auto (at most 2) or tags: 'python,ai'")
    parser.add_argument("--emoji", action=argparse.BooleanOptionalAction, default=None, help="allow or forbid emoji")
    parser.add_argument("--audience", help="who the tweet is for")
    parser.add_argument("--cta", dest="call_to_action", help="a call to action to end with")
    parser.add_argument("--language", help="language to write in, e.g. German")
    parser.add_argument("--link", help="a URL to append (counted as 23 characters)")
    parser.add_argument("--ban", dest="banned_phrases", action="append", default=[], help="a phrase to refuse")
    parser.add_argument("--seed", type=int, help="sampling seed (same seed, same sandbox tweet)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (0-2)")
    parser.add_argument("--template", default="tweet", help="prompt template name")
    parser.add_argument("--templates-file", help="JSON or TOML file of extra templates")
    parser.add_argument("--regenerations", type=_count, default=2, help="new tries when a tweet breaks the rules")
    parser.add_argument("--model", help="default: TWEETGEN_MODEL or gemini-flash-latest")
    parser.add_argument("--provider", type=_providers, help=PROVIDER_HELP)
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        help="seconds one attempt may take in all: connect, send, every read (TWEETGEN_TIMEOUT; default 30)",
    )
    parser.add_argument("--db", help="also record the call in this SQLite store (see tweetgen stats)")
    parser.add_argument("--metrics-file", help="write Prometheus metrics here (node_exporter textfile collector)")
    parser.add_argument("--otel", action="store_true", help="emit OpenTelemetry spans (needs tweetgen[otel])")
    parser.add_argument("--dry-run", action="store_true", help="print the rendered prompt and call nothing")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the text")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tweetgen", description="Generate tweets with Gemini, or offline with the sandbox."
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + _version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    gen = sub.add_parser("generate", help="generate one tweet (or --variants N)", description="Generate a tweet.")
    _add_request(gen, max_words=25)
    gen.add_argument("--variants", type=int, default=1, help="N different tweets from one call, best first (1-8)")
    _add_retry(gen)
    _add_logging(gen)

    thread = sub.add_parser("thread", help="generate a thread", description="Generate a numbered thread.")
    _add_request(thread, max_words=40)
    thread.add_argument("--tweets", type=int, default=5, help="tweets in the thread (2-25, default 5)")
    thread.add_argument("--no-numbering", dest="numbering", action="store_false", help="no '1/5' counters")
    _add_retry(thread)
    _add_logging(thread)

    batch = sub.add_parser("batch", help="generate one tweet per input row", description="Batch generation.")
    batch.add_argument("input", help="CSV (header with topic), JSON Lines, or text (one topic a line)")
    batch.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: JSON Lines, or CSV when it ends in .csv; - for stdout (JSON Lines unless --format csv)",
    )
    batch.add_argument("--input-format", choices=("csv", "jsonl", "txt"), help="default: from the extension")
    batch.add_argument("--format", dest="output_format", choices=("jsonl", "csv"), help="default: from the extension")
    batch.add_argument("--concurrency", type=int, default=8, help="calls in flight (1-256, default 8)")
    batch.add_argument("--rpm", type=_positive_float, help="client-side limit in requests per minute (off by default)")
    batch.add_argument("--retry-failed", action="store_true", help="call again rows that failed in an earlier run")
    batch.add_argument("--db", default="tweetgen.db", help="SQLite store to record and resume from (tweetgen.db)")
    batch.add_argument(
        "--wait",
        action="store_true",
        help="when another run is using the store, wait for it to end instead of stopping (exit 2) at once",
    )
    batch.add_argument("--metrics-port", type=_port, help="serve Prometheus /metrics on 127.0.0.1:PORT while running")
    batch.add_argument("--otel", action="store_true", help="emit OpenTelemetry spans (needs tweetgen[otel])")
    batch.add_argument("--template", default="tweet", help="prompt template for every row")
    batch.add_argument("--templates-file", help="JSON or TOML file of extra templates")
    batch.add_argument("--regenerations", type=_count, default=2, help="new tries when a tweet breaks the rules")
    batch.add_argument("--model", help="default: TWEETGEN_MODEL or gemini-flash-latest")
    batch.add_argument("--provider", type=_providers, help=PROVIDER_HELP)
    batch.add_argument(
        "--timeout",
        type=_positive_float,
        help="seconds one attempt may take in all: connect, send, every read (TWEETGEN_TIMEOUT; default 30)",
    )
    _add_retry(batch, jitter="full", rate_limits=True, budget=0.2)
    _add_logging(batch)

    stats = sub.add_parser("stats", help="retry metrics from the store", description="Retry metrics from the store.")
    stats.add_argument("--db", default="tweetgen.db", help="SQLite store (default tweetgen.db)")
    stats.add_argument("--since", help="only calls since: 2026-11-30, 2026-11-30T10:00, 1h, 30m, 7d")
    stats.add_argument("--json", action="store_true", help="print JSON")

    demo = sub.add_parser("demo", help="run the seed's demo (normal call, 503 retried, 401 and 429 not retried)")
    _add_logging(demo)

    sandbox = sub.add_parser("sandbox", help="the offline Gemini-compatible server")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    sandbox_sub.required = True
    serve = sandbox_sub.add_parser("serve", help="serve until interrupted")
    serve.add_argument("--port", type=_port, default=8765, help="port on 127.0.0.1 (0 picks a free one; default 8765)")
    serve.add_argument("--faults", default="", help="fault script, e.g. '503*2,ok,429:26s,drop'")
    serve.add_argument("--latency", type=_positive_float, default=0.0, help="seconds before every answer")
    serve.add_argument("--require-key", help="answer API_KEY_INVALID unless x-goog-api-key equals this")
    serve.add_argument("--error-rate", type=_ratio, default=0.0, help="answer 503 at random with this probability")
    serve.add_argument("--seed", type=int, help="seed for --error-rate (reproducible faults)")
    serve.add_argument("--metrics-port", type=_port, help="serve Prometheus /metrics of the sandbox on this port")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
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
    from .logs import get_logger, redact_text

    try:
        return COMMANDS[args.command](args)
    except ConfigurationError as error:
        flag = FLAGS.get(error.setting or "")
        print(f"tweetgen: error: {flag + ': ' if flag else ''}{redact_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except TweetGenError as error:
        attempts = f" (after {error.attempts} attempt{'s' if error.attempts != 1 else ''})" if error.attempts else ""
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
        return 130
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): not an error of ours
        sys.stderr.close()
        return EXIT_OK
    except Exception as error:  # a bug: one clear line here, the traceback in the log file
        get_logger().error("Unexpected error", error_type=type(error).__name__, exc_info=True)
        print(f"tweetgen: unexpected error: {type(error).__name__}: {redact_text(str(error))}", file=sys.stderr)
        return EXIT_FAILED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
