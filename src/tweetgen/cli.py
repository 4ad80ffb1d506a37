"""The ``tweetgen`` command: results on stdout, logs and notices on stderr; exit 0, 1 (failed) or 2 (bad input)."""

from __future__ import annotations

import argparse
import math
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .config import (
    DEFAULT_API_VERSION,
    DEFAULT_BASE_URL,
    DEFAULT_LOG_FILE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MODEL,
    DEFAULT_OPENAI_BASE_URL,
    DEFAULT_OPENAI_MODEL,
    DEFAULT_TIMEOUT,
    OTEL_INSTALL_HINT,
    PROVIDERS,
)
from .errors import ConfigurationError, TweetGenError
from .prompts import TONES

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LEVELS = (
    "DEBUG",
    "INFO",
    "WARNING",
    "ERROR",
)  # as tweetgen.logs.LEVELS, without importing structlog at --help
# tweetgen.backoff's defaults, without importing httpx at --help (a test checks that they agree)
DEFAULT_MAX_RETRIES, DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRY_AFTER = (
    3,
    1.0,
    10.0,
    60.0,
)

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


# --- option types: a bad value is a usage error that says what was expected, in words ---------------------------


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
            f"unknown provider in {text!r}; use {', '.join(PROVIDERS)}, or a chain such as gemini,openai"
        )
    return ",".join(names)


# --- help: what users of gh, httpie and llm expect: examples, the environment, exit codes, every default ----------

PROVIDER_HELP = (
    f"{', '.join(PROVIDERS)}, or a fallback chain such as gemini,openai (default: TWEETGEN_PROVIDER, else auto: "
    "Gemini with a key, the offline sandbox without one)"
)
OTEL_HELP = f"emit OpenTelemetry spans to the configured tracer provider (needs the otel extra: {OTEL_INSTALL_HINT})"

EXIT_CODES = """\
exit codes:
  0    success
  1    generation failed: an API error, the network, blocked content, no valid tweet (batch: a row failed)
  2    bad input or configuration, usage errors included
  130  interrupted (Ctrl-C or SIGTERM)"""

ENVIRONMENT = f"""\
environment (also read from a .env file in the working directory; the environment wins; flags win over both):
  GEMINI_API_KEY               the Gemini API key (or GOOGLE_API_KEY); without one, --provider auto uses the
                               offline sandbox, whose tweets are placeholder text, and says so
  GEMINI_BASE_URL              the Gemini endpoint (default {DEFAULT_BASE_URL})
  TWEETGEN_PROVIDER            auto, gemini, sandbox, openai, or a chain such as gemini,openai (default auto)
  TWEETGEN_MODEL               the Gemini model (default {DEFAULT_MODEL}), as --model
  TWEETGEN_API_VERSION         the Gemini API version (default {DEFAULT_API_VERSION})
  TWEETGEN_TIMEOUT             seconds a whole attempt may take (default {DEFAULT_TIMEOUT:g}), as --timeout
  TWEETGEN_MAX_RESPONSE_BYTES  the largest answer read (default {DEFAULT_MAX_RESPONSE_BYTES}), as --max-response-bytes
  TWEETGEN_LOG_LEVEL           DEBUG, INFO, WARNING or ERROR (default INFO), as --log-level
  TWEETGEN_LOG_FILE            the JSON Lines log file (default {DEFAULT_LOG_FILE}; empty for none), as --log-file
  OPENAI_API_KEY               the key of an OpenAI-compatible API (--provider openai; none for a local server)
  OPENAI_BASE_URL              its endpoint (default {DEFAULT_OPENAI_BASE_URL}; Ollama: http://127.0.0.1:11434/v1)
  TWEETGEN_OPENAI_MODEL        its model (default {DEFAULT_OPENAI_MODEL})"""

SHORT_ENVIRONMENT = """\
environment: GEMINI_API_KEY (or GOOGLE_API_KEY) for Gemini, else --provider auto uses the offline sandbox;
  TWEETGEN_PROVIDER, TWEETGEN_MODEL, TWEETGEN_TIMEOUT, TWEETGEN_LOG_LEVEL, TWEETGEN_LOG_FILE, OPENAI_* and a .env
  file: 'tweetgen --help' describes them all"""

COMMANDS_HELP = """\
commands:
  generate       one tweet (or --variants N different ones)
  thread         a numbered thread, every tweet valid
  batch          one tweet per row of a CSV, JSON Lines or text file; resumable
  stats          retry metrics from the store (--db)
  demo           the seed's demo: a normal call, a 503 retried, a 401 and a 429 not retried
  sandbox serve  an offline Gemini-compatible server for your own tests

'tweetgen COMMAND --help' shows a command's options."""

EXAMPLES = {
    "tweetgen": [
        'tweetgen generate --topic "Python Programming" --tone witty --max-words 20',
        'tweetgen generate --topic "Python Programming" --json',
        'tweetgen thread --topic "Testing in Python" --tweets 5',
        "tweetgen batch topics.csv -o tweets.jsonl --concurrency 16",
        "tweetgen stats --since 1h",
        "tweetgen sandbox serve --port 8765 --faults '503*2,ok,429:26s'",
    ],
    "generate": [
        'tweetgen generate --topic "Python Programming" --tone witty --max-words 20',
        "tweetgen generate --topic Rust --variants 3 --hashtags rustlang,systems --no-emoji",
        "tweetgen generate --topic AI --link https://example.com/post --json",
        "tweetgen generate --topic AI --dry-run",
        "tweetgen generate --topic AI --provider sandbox",
        "tweetgen generate --topic AI --max-retries 5 --base-delay 0.5 --jitter full --deadline 30",
    ],
    "thread": [
        'tweetgen thread --topic "Testing in Python" --tweets 5',
        "tweetgen thread --topic Rust --tweets 3 --no-numbering --json",
    ],
    "batch": [
        "tweetgen batch topics.csv -o tweets.jsonl --concurrency 16",
        "tweetgen batch topics.txt -o - --rpm 600",
        "tweetgen batch topics.csv -o tweets.csv --retry-failed",
    ],
    "stats": ["tweetgen stats", "tweetgen stats --db tweetgen.db --since 1h --json"],
    "demo": ["tweetgen demo", "tweetgen demo --log-file demo.log"],
    "sandbox": ["tweetgen sandbox serve --port 8765"],
    "sandbox serve": [
        "tweetgen sandbox serve --port 8765 --faults '503*2,ok,429:26s'",
        "tweetgen sandbox serve --port 0 --error-rate 0.2 --seed 7 --latency 0.05",
    ],
}

EXAMPLE_NOTES = {
    "tweetgen generate --topic AI --dry-run": "print the prompt, call nothing",
    "tweetgen generate --topic AI --provider sandbox": "offline placeholder text, no key needed",
    "tweetgen generate --topic AI --link https://example.com/post --json": "one JSON object on stdout",
    "tweetgen batch topics.txt -o - --rpm 600": "one topic a line in, JSON Lines on stdout",
    "tweetgen batch topics.csv -o tweets.csv --retry-failed": "call the rows that failed again",
    "tweetgen thread --topic Rust --tweets 3 --no-numbering --json": "no 1/3 counters, JSON out",
}


#: the sandbox's fault steps (tweetgen.sandbox.faults, not imported at --help; a test checks that they agree)
FAULT_KINDS = (
    "ok",
    "long",
    "quoted",
    "preamble",
    "emoji",
    "invalid-key",
    "echo-key",
    "drop",
    "hang",
    "html",
    "blocked",
    "max-tokens",
)
FAULTS_HELP = f"""\
fault script: steps separated by commas, answered one per request, in order; then normal answers:
  STATUS               that HTTP status (400 to 599) with Gemini's error body; 429:26s adds a 26 s retry delay
  STEP*N               the step N times, e.g. 503*2
  ok:SECONDS           answer normally after a delay (hang:SECONDS too)
  other steps          {", ".join(kind for kind in FAULT_KINDS if kind not in ("ok", "hang"))}"""


def _wrap(text: str) -> str:
    """Paragraphs filled to 100 columns (the description keeps its line breaks, so it is filled here)."""
    import textwrap

    return "\n\n".join(textwrap.fill(paragraph, 100) for paragraph in text.split("\n\n"))


def _epilog(name: str, *sections: str) -> str:
    lines = ["examples:"]
    for example in EXAMPLES[name]:
        note = EXAMPLE_NOTES.get(example)
        lines.append(f"  {example}" + (f"  # {note}" if note else ""))
    return "\n\n".join(["\n".join(lines), *sections])


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and the epilog's lines as written, and shows every option's default."""

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
    """Help with examples and defaults; on a usage error, the short usage, the error and where help is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)
        #: every command's parser by name (``generate``, ``sandbox serve``), to report an option it does not know
        self.commands: dict[str, _Parser] = {}

    def error(self, message: str) -> NoReturn:
        """Print the short usage, the one line that matters and where help is; exit 2."""
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\nsee '{self.prog} --help'\n")

    def unknown(self, extra: Sequence[str]) -> NoReturn:
        """Report arguments this command does not take, with the closest option when one was misspelt."""
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
        help=f"{', '.join(LEVELS)} (default: TWEETGEN_LOG_LEVEL, else INFO; a terminal shows WARNING and above "
        "unless this is given)",
    )
    group.add_argument(
        "--log-file",
        metavar="PATH",
        help=f"JSON Lines log file, '' for none (default: TWEETGEN_LOG_FILE, else {DEFAULT_LOG_FILE})",
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
        help=f"wait before the first retry, doubled before each next one (default: {DEFAULT_BASE_DELAY:g})",
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
        help="largest answer read, counted after decompression (default: TWEETGEN_MAX_RESPONSE_BYTES, else "
        f"{DEFAULT_MAX_RESPONSE_BYTES})",
    )
    group.add_argument(
        "--retry-rate-limits",
        action=argparse.BooleanOptionalAction,
        default=rate_limits,
        help=f"retry 429s, waiting as long as the server asks (default: {'on' if rate_limits else 'off'})",
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
        help="retries allowed as a share of requests while the API fails, plus a small reserve; 0 turns it off",
    )
    group.add_argument(
        "--circuit-breaker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fail fast while the API keeps failing (default: on)",
    )


def _add_provider(parser: argparse.ArgumentParser) -> None:
    """The options that choose and reach the model: shared by generate, thread and batch."""
    parser.add_argument(
        "--model", metavar="NAME", help=f"the model (default: TWEETGEN_MODEL, else {DEFAULT_MODEL})"
    )
    parser.add_argument("--provider", type=_providers, metavar="NAME", help=PROVIDER_HELP)
    parser.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="time one attempt may take in all: connect, send, every read; more than 0, at most 3600 (default: "
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
    parser.add_argument(
        "--cta", dest="call_to_action", metavar="TEXT", help="a call to action to end with"
    )
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
        metavar="PATH",
        help="also record the call in this SQLite store (see tweetgen stats)",
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


def _parser() -> _Parser:
    parser = _Parser(
        prog="tweetgen",
        usage="%(prog)s COMMAND [options]",
        description="Tweets from Gemini that keep coming when the API does not cooperate, or offline from the "
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
        "Generate a tweet (or --variants N different ones) and print it on stdout; logs and notices go to stderr.",
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
        "Generate a numbered thread (1/5, 2/5, ...) in one call, every tweet checked; print it on stdout.",
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
        "Generate one tweet per input row, --concurrency calls at a time. Every call is committed to a SQLite store "
        "(--db): rerunning the same command skips the rows already done and reports those that failed; "
        "--retry-failed calls them again.",
        SHORT_ENVIRONMENT,
        EXIT_CODES,
    )
    batch.add_argument(
        "input",
        metavar="INPUT",
        help="CSV with a topic column (and optionally id, tone, max_words, hashtags, emoji, ...), JSON Lines, or text "
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
        "--retry-failed",
        action="store_true",
        help="call again the rows that failed in an earlier run",
    )
    batch.add_argument(
        "--db", default="tweetgen.db", metavar="PATH", help="SQLite store to record and resume from"
    )
    batch.add_argument(
        "--wait",
        action="store_true",
        help="when another run is using the store, wait for it to end instead of stopping (exit 2) at once",
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
        "[--db PATH] [--since WHEN] [--json]",
        "Retry metrics from the store: calls, success on the first attempt and after retries, attempts, waits, "
        "errors by status and type, latency percentiles.",
        EXIT_CODES,
    )
    stats.add_argument("--db", default="tweetgen.db", metavar="PATH", help="SQLite store")
    stats.add_argument(
        "--since",
        metavar="WHEN",
        help="only calls since a date or an age: 2026-11-30, 2026-11-30T10:00, 1h, 30m, 7d",
    )
    stats.add_argument("--json", action="store_true", help="print JSON")

    demo = command(
        "demo",
        "[options]",
        "Run the seed's demo: a normal call (Gemini with a key, else the sandbox), then a 503 retried to success, "
        "a 401 and a 429 not retried, on the sandbox. The same as python main.py.",
        EXIT_CODES,
    )
    _add_logging(demo)

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
            "Serve Gemini's generateContent (and an OpenAI-compatible /v1/chat/completions) on 127.0.0.1 until "
            "interrupted (Ctrl-C). Point tweetgen at it with GEMINI_BASE_URL=http://127.0.0.1:PORT and any "
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
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus /metrics of the sandbox on this port",
    )
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
        parser.error("choose a command: generate, thread, batch, stats, demo or sandbox")
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
        return 130
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
