"""The ``tweetgen`` command: results on stdout, logs and notices on stderr; exit 0, 1 (failed) or 2 (bad input)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from .config import DEFAULT_LOG_FILE, PROVIDERS
from .errors import ConfigurationError, TweetGenError
from .logs import LEVELS, redact_text

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
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


def _add_retry(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("retries")
    group.add_argument("--max-retries", type=_count, default=3, help="retries after the first attempt (default 3)")
    group.add_argument("--base-delay", type=_positive_float, help="seconds before the first retry (default 1)")
    group.add_argument("--max-delay", type=_positive_float, help="cap on one wait (default 10)")
    group.add_argument("--jitter", choices=("none", "full", "equal", "decorrelated"), help="default none")
    group.add_argument("--deadline", type=_positive_float, help="seconds for all attempts and waits together")
    group.add_argument(
        "--retry-rate-limits", action="store_true", help="retry 429s, waiting as long as the server asks"
    )
    group.add_argument(
        "--max-retry-after", type=_positive_float, help="longest server-requested wait to honour (default 60)"
    )
    group.add_argument("--engine", choices=("custom", "tenacity"), default="custom", help="retry loop (same behaviour)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tweetgen", description="Generate tweets with Gemini, or offline with the sandbox."
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + _version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    gen = sub.add_parser("generate", help="generate one tweet", description="Generate one tweet and print it.")
    gen.add_argument("--topic", required=True, help="what the tweet is about")
    gen.add_argument("--tone", default="professional", help="professional, casual, witty, inspirational, informative")
    gen.add_argument("--max-words", type=int, default=25, help="1-60 (default 25)")
    gen.add_argument("--model", help="default: TWEETGEN_MODEL or gemini-flash-latest")
    gen.add_argument("--provider", choices=PROVIDERS, default=None, help="default: TWEETGEN_PROVIDER or auto")
    gen.add_argument("--timeout", type=_positive_float, help="read timeout per attempt in seconds (TWEETGEN_TIMEOUT)")
    gen.add_argument("--seed", type=int, help="sampling seed (same seed, same sandbox tweet)")
    gen.add_argument("--temperature", type=float, help="sampling temperature")
    gen.add_argument("--template", default="tweet", help="prompt template name")
    gen.add_argument("--templates-file", help="JSON or TOML file of extra templates")
    gen.add_argument("--regenerations", type=_count, default=2, help="new tries when a tweet breaks the rules")
    gen.add_argument("--dry-run", action="store_true", help="print the rendered prompt and call nothing")
    gen.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    _add_retry(gen)
    _add_logging(gen)

    demo = sub.add_parser("demo", help="run the seed's demo (normal call, 503 retried, 401 and 429 not retried)")
    _add_logging(demo)

    sandbox = sub.add_parser("sandbox", help="the offline Gemini-compatible server")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    sandbox_sub.required = True
    serve = sandbox_sub.add_parser("serve", help="serve until interrupted")
    serve.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0 picks a free one; default 8765)")
    serve.add_argument("--faults", default="", help="fault script, e.g. '503*2,ok,429:26s,drop'")
    serve.add_argument("--latency", type=_positive_float, default=0.0, help="seconds before every answer")
    serve.add_argument("--require-key", help="answer API_KEY_INVALID unless x-goog-api-key equals this")
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def _setup_logging(args: argparse.Namespace) -> None:
    from .config import load_settings
    from .logs import setup_logging

    settings = load_settings()
    log_file = settings.log_file if args.log_file is None else args.log_file
    setup_logging(args.log_level or settings.log_level, log_file or None, console=not args.quiet)


def _cmd_generate(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .generator import TweetGenerator, resolve_provider
    from .prompts import TemplateRegistry, default_registry
    from .retry import RetryPolicy

    templates = default_registry
    if args.templates_file:
        templates = TemplateRegistry({name: default_registry.get(name) for name in default_registry.names()})
        templates.load_file(args.templates_file)
    settings = load_settings(model=args.model, timeout=args.timeout)
    if args.dry_run:
        print(TweetGenerator.prompt_for(templates, args.topic, args.tone, args.max_words, template=args.template))
        return EXIT_OK
    _setup_logging(args)
    provider = resolve_provider(settings, args.provider or settings.provider or "auto")
    if provider == "sandbox" and not settings.api_key:
        print("tweetgen: no Gemini API key configured; using the offline sandbox", file=sys.stderr)
    policy = RetryPolicy.from_retries(
        args.max_retries,
        base_delay=args.base_delay,
        max_delay=args.max_delay,
        jitter=args.jitter,
        deadline=args.deadline,
        retry_rate_limits=args.retry_rate_limits or None,
        max_retry_after=args.max_retry_after,
    )
    with TweetGenerator(
        provider=provider,
        settings=settings,
        policy=policy,
        engine=args.engine,
        regenerations=args.regenerations,
        templates=templates,
    ) as generator:
        tweet = generator.generate(
            args.topic, args.tone, args.max_words, template=args.template, seed=args.seed, temperature=args.temperature
        )
    if args.json:
        record: dict[str, Any] = asdict(tweet)
        print(json.dumps(record, ensure_ascii=False))
    else:
        print(tweet.text)
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _setup_logging(args)
    return run_demo()


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import SandboxServer

    server = SandboxServer(port=args.port, faults=args.faults, latency=args.latency, require_key=args.require_key)
    print(f"tweetgen sandbox serving Gemini generateContent at {server.url}", file=sys.stderr)
    print(f"try: GEMINI_BASE_URL={server.url} GEMINI_API_KEY=dummy tweetgen generate --topic Python", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("tweetgen sandbox stopped", file=sys.stderr)
    finally:
        server.stop()
    return EXIT_OK


_COMMANDS = {"generate": _cmd_generate, "demo": _cmd_demo, "sandbox": _cmd_sandbox}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigurationError as error:
        print(f"tweetgen: error: {redact_text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except TweetGenError as error:
        attempts = f" (after {error.attempts} attempt{'s' if error.attempts != 1 else ''})" if error.attempts else ""
        wait = f"; the server asked to wait {error.retry_after:g}s" if error.retry_after else ""
        print(f"tweetgen: failed{attempts}: {redact_text(str(error))}{wait}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("tweetgen: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
