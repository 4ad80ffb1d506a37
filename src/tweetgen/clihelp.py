"""The words of ``tweetgen --help``: defaults, the flag of each setting, examples, environment,
commands and faults; kept light to import (no httpx, no structlog) so that help is fast."""

from __future__ import annotations

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
from .exitcodes import EXIT_CODES

__all__ = ["EXAMPLES", "EXIT_CODES", "FAULT_KINDS", "FLAGS"]

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

#: the option that sets each library setting: a ConfigurationError's ``setting`` (a Python
#: parameter, never shown) is shown as this flag in front of the message, which names the setting in
#: words (``--max-words: the word ...``)
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
    "shared": "--shared",
    "thinking": "--thinking",
    "service_tier": "--service-tier",
    "voice": "--voice",
    "voice_from": "--from",
}


PROVIDER_HELP = (
    f"{', '.join(PROVIDERS)}, or a fallback chain such as gemini,openai (default: "
    "TWEETGEN_PROVIDER, else auto: "
    "Gemini with a key, the offline sandbox without one)"
)
OTEL_HELP = (
    "emit OpenTelemetry spans to the configured tracer provider "
    f"(needs the otel extra: {OTEL_INSTALL_HINT})"
)

ENVIRONMENT = f"""\
environment (also read from a .env file in the working directory; the environment wins; flags win \
over both):
  GEMINI_API_KEY               the Gemini API key (or GOOGLE_API_KEY); without one, --provider \
auto uses the
                               offline sandbox, whose tweets are placeholder text, and says so
  GEMINI_BASE_URL              the Gemini endpoint (default {DEFAULT_BASE_URL})
  TWEETGEN_PROVIDER            auto, gemini, sandbox, openai, or a chain such as gemini,openai \
(default auto)
  TWEETGEN_MODEL               the Gemini model (default {DEFAULT_MODEL}), as --model
  TWEETGEN_API_VERSION         the Gemini API version (default {DEFAULT_API_VERSION})
  TWEETGEN_TIMEOUT             seconds a whole attempt may take (default {DEFAULT_TIMEOUT:g}), as \
--timeout
  TWEETGEN_MAX_RESPONSE_BYTES  the largest answer read (default {DEFAULT_MAX_RESPONSE_BYTES}), as \
--max-response-bytes
  TWEETGEN_LOG_LEVEL           DEBUG, INFO, WARNING or ERROR (default INFO), as --log-level
  TWEETGEN_LOG_FILE            the JSON Lines log file (default {DEFAULT_LOG_FILE}; empty for \
none), as --log-file
  OPENAI_API_KEY               the key of an OpenAI-compatible API (--provider openai; none for a \
local server)
  OPENAI_BASE_URL              its endpoint (default {DEFAULT_OPENAI_BASE_URL}; Ollama: http://127.0.0.1:11434/v1)
  TWEETGEN_OPENAI_MODEL        its model (default {DEFAULT_OPENAI_MODEL})"""

SHORT_ENVIRONMENT = """\
environment: GEMINI_API_KEY (or GOOGLE_API_KEY) for Gemini, else --provider auto uses the offline \
sandbox;
  TWEETGEN_PROVIDER, TWEETGEN_MODEL, TWEETGEN_TIMEOUT, TWEETGEN_LOG_LEVEL, TWEETGEN_LOG_FILE, \
OPENAI_* and a .env
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
    "models": ["tweetgen models", "tweetgen models --json"],
    "voice": [
        "tweetgen voice create me --from my-posts.txt",
        "tweetgen voice show me",
        'tweetgen generate --topic "code review" --voice me',
    ],
    "review": ["tweetgen review", "tweetgen review --db tweetgen.db --no-browser"],
    "sandbox": ["tweetgen sandbox serve --port 8765"],
    "sandbox serve": [
        "tweetgen sandbox serve --port 8765 --faults '503*2,ok,429:26s'",
        "tweetgen sandbox serve --port 0 --error-rate 0.2 --seed 7 --latency 0.05",
    ],
}

EXAMPLE_NOTES = {
    "tweetgen generate --topic AI --dry-run": "print the prompt, call nothing",
    "tweetgen generate --topic AI --provider sandbox": "offline placeholder text, no key needed",
    "tweetgen generate --topic AI --link https://example.com/post --json": (
        "one JSON object on stdout"
    ),
    "tweetgen batch topics.txt -o - --rpm 600": "one topic a line in, JSON Lines on stdout",
    "tweetgen batch topics.csv -o tweets.csv --retry-failed": "call the rows that failed again",
    "tweetgen thread --topic Rust --tweets 3 --no-numbering --json": "no 1/3 counters, JSON out",
}


#: the sandbox's fault steps (tweetgen.sandbox.faults, not imported at --help; a test checks that
#: they agree)
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
  STATUS               that HTTP status (400 to 599) with Gemini's error body; 429:26s adds a 26 s \
retry delay
  STEP*N               the step N times, e.g. 503*2
  ok:SECONDS           answer normally after a delay (hang:SECONDS too)
  other steps          {", ".join(kind for kind in FAULT_KINDS if kind not in ("ok", "hang"))}"""


def _wrap(text: str) -> str:
    """Paragraphs filled to 100 columns (the description keeps its line breaks, so it is filled
    here)."""
    import textwrap

    return "\n\n".join(textwrap.fill(paragraph, 100) for paragraph in text.split("\n\n"))


def _epilog(name: str, *sections: str) -> str:
    lines = ["examples:"]
    for example in EXAMPLES[name]:
        note = EXAMPLE_NOTES.get(example)
        lines.append(f"  {example}" + (f"  # {note}" if note else ""))
    return "\n\n".join(["\n".join(lines), *sections])
