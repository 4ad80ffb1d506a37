"""The pieces of the ``tweetgen`` parser: option types whose errors say what was expected in words,
the help formatter, a parser whose usage errors are three lines, and the option groups commands
share."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .clihelp import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    LEVELS,
    OTEL_HELP,
    PROVIDER_HELP,
)
from .config import (
    DEFAULT_LOG_FILE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MODEL,
    DEFAULT_TIMEOUT,
    PROVIDERS,
)
from .exitcodes import EXIT_USAGE
from .prompts import TONES

# --- option types: a bad value is a usage error that says what was expected, in words -------------


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    value = _float(text, "a number of seconds")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    """A number of seconds above 0 (a deadline of 0 would allow nothing)."""
    value = _float(text, "a number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _rate(text: str) -> float:
    value = _float(text, "a number of requests per minute")
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of requests per minute, 0 or more, got {text!r}"
        )
    return value


def _tokens(text: str) -> float:
    value = _float(text, "a number of tokens per minute")
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of tokens per minute, 0 or more, got {text!r}"
        )
    return value


def _number(text: str) -> float:
    return _float(text, "a number")


def _ratio(text: str) -> float:
    value = _float(text, "a ratio from 0 to 1")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a ratio from 0 to 1, got {text!r}")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is from 0 to 65535, got {value}")
    return value


def _providers(text: str) -> str:
    names = [part.strip() for part in text.split(",")]
    unknown = [name for name in names if name not in PROVIDERS]
    if unknown or not all(names):
        raise argparse.ArgumentTypeError(
            f"unknown provider in {text!r}; use {', '.join(PROVIDERS)}, or a chain such as "
            "gemini,openai"
        )
    return ",".join(names)


# --- help: what users of gh, httpie and llm expect: examples, the environment, exit codes, every
# default ---


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and the epilog's lines as written, and shows every option's
    default."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        unshown = (
            default is None or isinstance(default, bool) or default in ("", [], argparse.SUPPRESS)
        )
        if "default" in text or unshown or not action.option_strings:
            return text
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class _Parser(argparse.ArgumentParser):
    """Help with examples and defaults; on a usage error, the short usage, the error and where help
    is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        #: every command's parser by name (``generate``, ``sandbox serve``), to report an option it
        #: does not know
        self.commands: dict[str, _Parser] = {}

    def error(self, message: str) -> NoReturn:
        """Print the short usage, the one line that matters and where help is; exit 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nsee '{self.prog} --help'\n")

    def unknown(self, extra: Sequence[str]) -> NoReturn:
        """Report arguments this command does not take, with the closest option when one was
        misspelt."""
        import difflib

        options = sorted(
            {s for action in self._actions for s in action.option_strings if s.startswith("--")}
        )
        close = (
            difflib.get_close_matches(extra[0].split("=", 1)[0], options, n=1)
            if extra[0][:1] == "-"
            else []
        )
        self.error(
            f"unrecognized arguments: {' '.join(extra)}"
            + (f" (did you mean {close[0]}?)" if close else "")
        )


def _add_logging(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=LEVELS,
        metavar="LEVEL",
        help=f"{', '.join(LEVELS)} (default: TWEETGEN_LOG_LEVEL, else INFO; a terminal shows "
        "WARNING and above "
        "unless this is given)",
    )
    group.add_argument(
        "--log-file",
        metavar="PATH",
        help="JSON Lines log file, '' for none (default: TWEETGEN_LOG_FILE, else "
        f"{DEFAULT_LOG_FILE})",
    )
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no log lines on stderr (the log file is still written)",
    )


def _add_retry(
    parser: argparse.ArgumentParser,
    *,
    jitter: str = "none",
    rate_limits: bool = False,
    budget: float = 0.1,
) -> None:
    group = parser.add_argument_group("retries")
    group.add_argument(
        "--max-retries",
        type=_count,
        default=DEFAULT_MAX_RETRIES,
        metavar="N",
        help="retries after the first attempt",
    )
    group.add_argument(
        "--base-delay",
        type=_seconds,
        metavar="SECONDS",
        help="wait before the first retry, doubled before each next one (default: "
        f"{DEFAULT_BASE_DELAY:g})",
    )
    group.add_argument(
        "--max-delay",
        type=_seconds,
        metavar="SECONDS",
        help=f"cap on one wait (default: {DEFAULT_MAX_DELAY:g})",
    )
    group.add_argument(
        "--jitter",
        choices=("none", "full", "equal", "decorrelated"),
        default=jitter,
        help="how waits are randomised",
    )
    group.add_argument(
        "--deadline",
        type=_positive_seconds,
        metavar="SECONDS",
        help="for all attempts and waits together (default: none)",
    )
    group.add_argument(
        "--max-response-bytes",
        type=_count,
        metavar="BYTES",
        help="largest answer read, counted after decompression (default: "
        "TWEETGEN_MAX_RESPONSE_BYTES, else "
        f"{DEFAULT_MAX_RESPONSE_BYTES})",
    )
    group.add_argument(
        "--retry-rate-limits",
        action=argparse.BooleanOptionalAction,
        default=rate_limits,
        help="retry 429s, waiting as long as the server asks (default: "
        f"{'on' if rate_limits else 'off'})",
    )
    group.add_argument(
        "--max-retry-after",
        type=_seconds,
        metavar="SECONDS",
        help=f"longest server-requested wait to honour (default: {DEFAULT_MAX_RETRY_AFTER:g})",
    )
    group.add_argument(
        "--engine",
        choices=("custom", "tenacity"),
        default="custom",
        help="retry loop (same behaviour)",
    )
    group.add_argument(
        "--retry-budget",
        type=_ratio,
        default=budget,
        metavar="RATIO",
        help="retries allowed as a share of requests while the API fails, plus a small reserve; 0 "
        "turns it off",
    )
    group.add_argument(
        "--circuit-breaker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail fast while the API keeps failing (default: on)",
    )


def _default_db() -> str:
    """The store when ``--db`` is not given: ``TWEETGEN_DB``, else ``tweetgen.db``."""
    return os.environ.get("TWEETGEN_DB") or "tweetgen.db"


def _add_provider(parser: argparse.ArgumentParser) -> None:
    """The options that choose and reach the model: shared by generate, thread and batch."""
    parser.add_argument(
        "--shared",
        metavar="URL",
        help="share the rate limit, circuit breaker and retry budget with every process naming "
        "this postgresql:// URL (default: TWEETGEN_SHARED, else none)",
    )
    parser.add_argument(
        "--model", metavar="NAME", help=f"the model (default: TWEETGEN_MODEL, else {DEFAULT_MODEL})"
    )
    parser.add_argument("--provider", type=_providers, metavar="NAME", help=PROVIDER_HELP)
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time one attempt may take in all: connect, send, every read; more than 0, at most "
        "3600 (default: "
        f"TWEETGEN_TIMEOUT, else {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--template", default="tweet", metavar="NAME", help="prompt template")
    parser.add_argument(
        "--templates-file", metavar="PATH", help="JSON or TOML file of extra templates"
    )
    parser.add_argument(
        "--regenerations",
        type=_count,
        default=2,
        metavar="N",
        help="new tries when a tweet breaks the rules",
    )
    parser.add_argument("--otel", action="store_true", help=OTEL_HELP)
    parser.add_argument(
        "--thinking",
        choices=("off", "low", "medium", "high", "auto"),
        help="how much the model may think before it writes: off, low, medium, high, or auto "
        "(the model's own default) (default: TWEETGEN_THINKING, else off)",
    )
    parser.add_argument(
        "--service-tier",
        choices=("standard", "flex", "priority"),
        help="Gemini's service tier: flex costs half and may be shed (then standard answers), "
        "priority costs more (default: TWEETGEN_SERVICE_TIER, else standard)",
    )


def _add_request(parser: argparse.ArgumentParser, *, max_words: int) -> None:
    parser.add_argument("--topic", required=True, help="what to write about (required)")
    parser.add_argument("--tone", default="professional", help=", ".join(TONES))
    parser.add_argument(
        "--max-words", type=_whole, default=max_words, metavar="N", help="words per tweet, 1 to 60"
    )
    parser.add_argument(
        "--hashtags",
        default="auto",
        metavar="TAGS",
        help="none, auto (at most 2) or tags: python,ai",
    )
    parser.add_argument(
        "--emoji",
        action=argparse.BooleanOptionalAction,
        help="allow or forbid emoji (default: the model decides)",
    )
    parser.add_argument("--audience", metavar="TEXT", help="who the tweet is for")
    parser.add_argument("--cta", dest="call_to_action", metavar="TEXT", help="call to action")
    parser.add_argument("--voice", metavar="NAME", help="write in a voice (tweetgen voice list)")
    parser.add_argument(
        "--language",
        metavar="NAME",
        help="language to write in, e.g. German (default: the topic's)",
    )
    parser.add_argument(
        "--link", metavar="URL", help="a URL to append (counted as 23 characters and one word)"
    )
    parser.add_argument(
        "--ban",
        dest="banned_phrases",
        action="append",
        default=[],
        metavar="PHRASE",
        help="a phrase to refuse; repeat",
    )
    parser.add_argument(
        "--seed", type=_whole, metavar="N", help="sampling seed (same seed, same sandbox tweet)"
    )
    parser.add_argument(
        "--temperature", type=_number, metavar="T", help="sampling temperature, 0 to 2"
    )
    _add_provider(parser)
    parser.add_argument(
        "--db",
        metavar="PATH|URL",
        help="also record the call in this store: a SQLite file or a postgresql:// URL (see "
        "tweetgen stats)",
    )
    parser.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="write Prometheus metrics here (node_exporter textfile collector)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the rendered prompt and call nothing"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of the text")
