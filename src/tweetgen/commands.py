"""What each ``tweetgen`` subcommand does; the parser lives in :mod:`tweetgen.cli`."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .batchcommand import cmd_batch
from .errors import ConfigurationError
from .exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE"]


def _setup_logging(args: argparse.Namespace) -> None:
    from .config import load_settings
    from .logs import LEVELS, setup_logging

    settings = load_settings()
    if not args.log_level and settings.log_level.strip().upper() not in LEVELS:
        where = settings.sources.get("log_level", "environment TWEETGEN_LOG_LEVEL")
        raise ConfigurationError(
            f"the log level (from {where}) must be one of {', '.join(LEVELS)} (any case), got "
            f"{settings.log_level!r}"
        )
    log_file = settings.log_file if args.log_file is None else args.log_file
    # a person at a terminal sees warnings and errors (a batch: its progress) and the result; the
    # file keeps INFO. A level asked for applies to both; the demo, which is there to show the
    # events, shows INFO.
    quiet_console = args.command == "batch" or (sys.stderr.isatty() and args.command != "demo")
    console_level = "WARNING" if quiet_console and not args.log_level else None
    setup_logging(
        args.log_level or settings.log_level,
        log_file or None,
        console=not args.quiet,
        console_level=console_level,
    )


_REQUEST_OPTIONS = (
    "template",
    "hashtags",
    "emoji",
    "audience",
    "call_to_action",
    "language",
    "link",
    "seed",
    "temperature",
)


def _request_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {name: getattr(args, name) for name in _REQUEST_OPTIONS}
    options["banned_phrases"] = tuple(args.banned_phrases)
    return options


def _templates(args: argparse.Namespace) -> Any:
    from .prompts import TemplateRegistry, default_registry

    if not args.templates_file:
        return default_registry
    templates = TemplateRegistry(
        {name: default_registry.get(name) for name in default_registry.names()}
    )
    templates.load_file(args.templates_file)
    return templates


def _generator(
    args: argparse.Namespace,
    observers: Sequence[Any] = (),
    *,
    providers: Callable[[Any, str, Any], Sequence[Any]] | None = None,
    async_sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Any:
    """Build the generator the arguments describe (templates, provider, policy); logs are set up
    here. ``providers(settings, spec, policy)`` builds the provider chain when given (a batch's
    throttled providers); ``async_sleep``: the generator's waits in async code."""
    from .config import SANDBOX_NOTICE, load_settings
    from .generator import TweetGenerator
    from .providers.factory import resolve_providers
    from .resilience import RetryBudget
    from .retry import RetryPolicy

    _check_delays(args)
    settings = load_settings(
        model=args.model,
        timeout=args.timeout,
        max_response_bytes=args.max_response_bytes,
        shared=getattr(args, "shared", None),  # --shared, else TWEETGEN_SHARED: the fleet's limits
        thinking=getattr(args, "thinking", None),  # else TWEETGEN_THINKING, else off
        service_tier=getattr(args, "service_tier", None),  # else TWEETGEN_SERVICE_TIER
    )
    _setup_logging(args)
    spec = args.provider or settings.provider or "auto"
    provider = ",".join(resolve_providers(settings, spec, offline=True))
    if spec == "auto" and provider == "sandbox":
        print(SANDBOX_NOTICE, file=sys.stderr)
    policy = RetryPolicy.from_retries(
        args.max_retries,
        base_delay=args.base_delay,
        max_delay=args.max_delay,
        jitter=args.jitter,
        deadline=args.deadline,
        retry_rate_limits=args.retry_rate_limits,
        max_retry_after=args.max_retry_after,
    )
    budget: Any = False
    if args.retry_budget:
        budget = RetryBudget.for_policy(policy, ratio=args.retry_budget)
    return TweetGenerator(
        provider=provider if providers is None else providers(settings, provider, policy),
        async_sleep=async_sleep,
        settings=settings,
        policy=policy,
        retry_budget=budget,
        circuit_breaker=args.circuit_breaker,
        engine=args.engine,
        regenerations=args.regenerations,
        templates=_templates(args),
        observers=observers,
    )


def _check_delays(args: argparse.Namespace) -> None:
    """--base-delay above --max-delay (given or default) is a usage error in the options' own
    words."""
    from .backoff import DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY

    base = DEFAULT_BASE_DELAY if args.base_delay is None else args.base_delay
    cap = DEFAULT_MAX_DELAY if args.max_delay is None else args.max_delay
    if base > cap:
        default = "" if args.base_delay is not None else ", its default"
        given = f"--base-delay ({_seconds(base)}{default})"
        limit = (
            f"--max-delay ({_seconds(cap)}{'' if args.max_delay is not None else ', its default'})"
        )
        raise ConfigurationError(
            f"{given} is longer than {limit}, the longest wait between attempts; raise --max-delay "
            "or lower "
            "--base-delay"
        )


def _seconds(value: float) -> str:
    return f"{value:g} second{'' if value == 1 else 's'}"


@contextlib.contextmanager
def _recording(args: argparse.Namespace) -> Iterator[list[Any]]:
    """The observers the options ask for (store, metrics file, OpenTelemetry); closed or flushed
    afterwards."""
    observers: list[Any] = _tracing(args)
    with contextlib.ExitStack() as stack:
        if args.db:
            from .store import Store

            observers.append(stack.enter_context(Store(args.db)).observer())
        metrics = None
        if args.metrics_file:
            from .metrics import PrometheusObserver

            metrics = PrometheusObserver()
            observers.append(metrics)
        try:
            yield observers
        finally:
            if metrics is not None:
                from .metrics import write_textfile

                write_textfile(metrics, args.metrics_file)


def _tracing(args: argparse.Namespace) -> list[Any]:
    """The OpenTelemetry observer ``--otel`` asks for; a warning when no tracer provider would
    receive its spans."""
    if not args.otel:
        return []
    from .otel import NO_PROVIDER_WARNING, OpenTelemetryObserver, tracer_provider_configured

    observer = OpenTelemetryObserver()
    if not tracer_provider_configured():
        print(f"tweetgen: warning: --otel: {NO_PROVIDER_WARNING}", file=sys.stderr)
    return [observer]


def cmd_stats(args: argparse.Namespace) -> int:
    from .stats import compute_stats, parse_since, render_json, render_text
    from .store import Store
    from .storedb import is_url

    if not is_url(args.db) and not Path(args.db).is_file():  # a URL names a server's database
        raise ConfigurationError(
            f"no store at {args.db}; record calls with tweetgen batch or tweetgen generate --db"
        )
    since = parse_since(args.since) if args.since else None
    with Store(args.db) as store:
        stats = compute_stats(store, since)
    print(render_json(stats) if args.json else render_text(stats))
    return EXIT_OK


def _dry_run(args: argparse.Namespace, **options: Any) -> int:
    from .request import TweetRequest

    voice = getattr(args, "voice", None)
    request = TweetRequest(args.topic, args.tone, args.max_words, voice=voice, **options)
    print(request.render(_templates(args)))
    return EXIT_OK


def _voiced(generator: Any, args: argparse.Namespace, **options: Any) -> Any:
    """A call with ``--voice``: the request is built here (``TweetGenerator.generate`` and its
    twins take no voice); a list of tweets, or a thread."""
    from .request import TweetRequest

    request = TweetRequest(args.topic, args.tone, args.max_words, voice=args.voice, **options)
    if request.thread:
        return generator._drive(request, generator._thread_plan)
    if request.variants != 1:
        return generator._drive(request, generator._variants_plan)
    return [generator.generate_request(request)]


def cmd_generate(args: argparse.Namespace) -> int:
    options = _request_options(args)
    if args.dry_run:
        return _dry_run(args, variants=args.variants, **options)
    with _recording(args) as observers, _generator(args, observers) as generator:
        if getattr(args, "voice", None):
            tweets = _voiced(generator, args, variants=args.variants, **options)
        elif args.variants != 1:
            tweets = generator.generate_variants(
                args.topic, args.tone, args.max_words, n=args.variants, **options
            )
            if len(tweets) < args.variants:
                print(
                    f"tweetgen: {len(tweets)} of {args.variants} variants passed the rules",
                    file=sys.stderr,
                )
        else:
            tweets = [generator.generate(args.topic, args.tone, args.max_words, **options)]
    if args.json:
        payload: Any = tweets[0].to_dict() if args.variants == 1 else [t.to_dict() for t in tweets]
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print("\n\n".join(t.text for t in tweets))
    return EXIT_OK


def cmd_thread(args: argparse.Namespace) -> int:
    options = _request_options(args)
    if args.dry_run:
        return _dry_run(args, thread=args.tweets, numbering=args.numbering, **options)
    with _recording(args) as observers, _generator(args, observers) as generator:
        if getattr(args, "voice", None):
            thread = _voiced(
                generator, args, thread=args.tweets, numbering=args.numbering, **options
            )
        else:
            thread = generator.generate_thread(
                args.topic,
                args.tone,
                args.max_words,
                tweets=args.tweets,
                numbering=args.numbering,
                **options,
            )
    print(
        json.dumps(thread.to_dict(), ensure_ascii=False) if args.json else "\n\n".join(thread.texts)
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    _setup_logging(args)
    return run_demo()


@contextlib.contextmanager
def _sandbox_metrics(server: Any, port: int) -> Iterator[None]:
    from prometheus_client import CollectorRegistry

    from .metrics import PrometheusObserver, SandboxCollector, serve

    registry = CollectorRegistry()
    registry.register(SandboxCollector(server))
    with serve(PrometheusObserver(registry), port) as endpoint:
        print(f"tweetgen sandbox metrics at {endpoint.url}", file=sys.stderr)
        yield


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import FaultScript, Quota, SandboxServer, parse_faults

    try:
        faults = FaultScript(parse_faults(args.faults), error_rate=args.error_rate, seed=args.seed)
    except ValueError as error:
        raise ConfigurationError(str(error)) from None
    quotas = (
        ("--quota-rpm", args.quota_rpm, Quota.per_minute),
        ("--quota-rps", args.quota_rps, Quota.per_second),
        ("--quota-rpd", args.quota_rpd, Quota.per_day),
    )
    chosen = [flag for flag, value, _ in quotas if value is not None]
    if len(chosen) > 1:
        raise ConfigurationError(f"{' and '.join(chosen)}: choose one quota, not several")
    quota = None
    for flag, value, make in quotas:
        try:
            quota = make(value) if value is not None else quota
        except ValueError as error:
            raise ConfigurationError(f"{flag}: {error}") from None
    try:
        server = SandboxServer(
            port=args.port, latency=args.latency, require_key=args.require_key, quota=quota
        )
    except OSError as error:
        raise ConfigurationError(
            f"cannot listen on 127.0.0.1:{args.port}: {error.strerror or error}"
        ) from None
    server.faults = faults
    print(f"tweetgen sandbox serving Gemini generateContent at {server.url}", file=sys.stderr)
    print(
        f"try: GEMINI_BASE_URL={server.url} GEMINI_API_KEY=dummy tweetgen generate --topic Python",
        file=sys.stderr,
    )
    if quota is not None:
        print(
            f"tweetgen sandbox quota: {quota.describe()} for all clients; above it 429 "
            f"RESOURCE_EXHAUSTED (stats: GET {server.url}/quota)",
            file=sys.stderr,
        )
    try:
        with contextlib.ExitStack() as stack:
            if args.metrics_port is not None:
                stack.enter_context(_sandbox_metrics(server, args.metrics_port))
            server.serve_forever()
    except KeyboardInterrupt:
        print("tweetgen sandbox stopped", file=sys.stderr)
    finally:
        server.stop()
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    """``tweetgen models``: see :mod:`tweetgen.modelscmd`."""
    from .modelscmd import run

    _setup_logging(args)
    return run(args)


def cmd_review(args: argparse.Namespace) -> int:
    """``tweetgen review``: see :mod:`tweetgen.reviewcmd` (it sets up logging itself)."""
    from .reviewcmd import run

    return run(args)


def cmd_voice(args: argparse.Namespace) -> int:
    """``tweetgen voice``: see :mod:`tweetgen.voicecmd`."""
    from .voicecmd import run

    if getattr(args, "voice_command", None):
        _setup_logging(args)
    return run(args)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "generate": cmd_generate,
    "thread": cmd_thread,
    "batch": cmd_batch,
    "stats": cmd_stats,
    "demo": cmd_demo,
    "sandbox": cmd_sandbox,
    "models": cmd_models,
    "review": cmd_review,
    "voice": cmd_voice,
}
