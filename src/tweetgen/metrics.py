"""Prometheus metrics for tweetgen calls: an observer that counts calls, attempts, retries and
tokens.

::

    obs = PrometheusObserver()                      # its own registry, never the global one
    gen = TweetGenerator(observers=[obs])
    server = serve(obs, port=9464)                  # GET http://127.0.0.1:9464/metrics
    write_textfile(obs, "/var/lib/node_exporter/tweetgen.prom")   # or a node_exporter textfile

Metrics (all carry ``provider`` and ``model`` unless said otherwise)::

    tweetgen_requests_total{outcome}                  logical calls, outcome ok / failed
    tweetgen_attempts_total{status_code,error_type}   HTTP attempts; "none" if no status / error
    tweetgen_retries_total                            attempts after the first of a retry run
    tweetgen_retries_denied_total                     retries the retry budget refused
    tweetgen_regenerations_total                      calls re-asked: the tweet broke the rules
    tweetgen_retry_wait_seconds_total                 time spent waiting between attempts
    tweetgen_tokens_total{direction}                  input / output / thinking tokens
    tweetgen_cost_usd_total{tier}                     US dollars the priced answers cost
    tweetgen_cost_unknown_total{tier}                 answers whose cost is unknown (no price)
    tweetgen_call_duration_seconds{outcome}           histogram of whole calls
    tweetgen_attempt_duration_seconds{outcome}        histogram of single attempts
    tweetgen_circuit_state{breaker}                   0 closed, 1 open, 2 half_open (breaker only)
    tweetgen_shared_state_available{shared}           1 while the fleet's state answers, else 0
    tweetgen_shared_state_fallbacks_total{shared}     times this process fell back to local limits
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .errors import ConfigurationError
from .trace import AttemptTrace, CallTrace, Observer

__all__ = [
    "CIRCUIT_STATES",
    "COST_TIERS",
    "DURATION_BUCKETS",
    "MetricsServer",
    "PrometheusObserver",
    "serve",
    "write_textfile",
]

#: Histogram buckets (seconds) for LLM calls: a fast answer takes ~0.5 s, a slow retried one a
#: minute.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)

#: Circuit breaker state -> gauge value.
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}

_MODEL = ("provider", "model")
#: the ``tier`` label's values (anything else an API says is ``other``: the label stays bounded)
COST_TIERS = frozenset({"standard", "flex", "priority", "batch"})


def _label(value: object) -> str:
    """A label value: ``none`` for a missing status code or error type."""
    return "none" if value is None else str(value)


def _tier(value: str | None) -> str:
    """The ``tier`` label: what the answer said (none said: standard), from a bounded set."""
    tier = (value or "standard").lower()
    return tier if tier in COST_TIERS else "other"


def _outcome(ok: bool) -> str:
    return "ok" if ok else "failed"


class PrometheusObserver(Observer):
    """Records every call and attempt in Prometheus metrics held in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = self._counter("tweetgen_requests", "Logical calls by outcome.", "outcome")
        self.attempts = self._counter(
            "tweetgen_attempts",
            "HTTP attempts by status code and error type.",
            "status_code",
            "error_type",
        )
        self.retries = self._counter("tweetgen_retries", "Attempts after the first of a retry run.")
        self.retries_denied = self._counter(
            "tweetgen_retries_denied", "Retries refused by the retry budget."
        )
        self.regenerations = self._counter(
            "tweetgen_regenerations", "Re-asks because the tweet broke the rules."
        )
        self.retry_wait = self._counter(
            "tweetgen_retry_wait_seconds", "Seconds spent waiting between attempts."
        )
        self.tokens = self._counter(
            "tweetgen_tokens", "Tokens by direction (input / output / thinking).", "direction"
        )
        self.cost = self._counter(
            "tweetgen_cost_usd", "US dollars the priced answers cost, by service tier.", "tier"
        )
        self.cost_unknown = self._counter(
            "tweetgen_cost_unknown",
            "Answers whose cost is unknown (a model without a known price), by service tier.",
            "tier",
        )
        self.call_duration = self._histogram(
            "tweetgen_call_duration_seconds",
            "Duration of whole calls, retries and regenerations included.",
        )
        self.attempt_duration = self._histogram(
            "tweetgen_attempt_duration_seconds", "Duration of single attempts."
        )
        self.circuit_state = Gauge(
            "tweetgen_circuit_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half_open.",
            ["breaker"],
            registry=self.registry,
        )
        self.registry.register(SharedStateCollector())

    def _counter(self, name: str, documentation: str, *labels: str) -> Counter:
        return Counter(name, documentation, [*_MODEL, *labels], registry=self.registry)

    def _histogram(self, name: str, documentation: str) -> Histogram:
        labels = [*_MODEL, "outcome"]
        return Histogram(
            name, documentation, labels, buckets=DURATION_BUCKETS, registry=self.registry
        )

    def __repr__(self) -> str:
        return f"PrometheusObserver(registry={self.registry!r})"

    def attempt_started(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """Count a retry and the wait before it."""
        if attempt.number > 1:
            self.retries.labels(call.provider, call.model).inc()
        if attempt.delay_before > 0:
            self.retry_wait.labels(call.provider, call.model).inc(attempt.delay_before)

    def attempt_finished(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """Count the attempt, its tokens, its cost and its duration."""
        labels = (call.provider, call.model)
        self.attempts.labels(*labels, _label(attempt.status_code), _label(attempt.error_type)).inc()
        if attempt.input_tokens:
            self.tokens.labels(*labels, "input").inc(attempt.input_tokens)
        if attempt.output_tokens:
            self.tokens.labels(*labels, "output").inc(attempt.output_tokens)
        if attempt.thought_tokens:
            self.tokens.labels(*labels, "thinking").inc(attempt.thought_tokens)
        if attempt.cost_usd:
            self.cost.labels(*labels, _tier(attempt.service_tier)).inc(attempt.cost_usd)
        elif attempt.cost_usd is None and attempt.ok:
            self.cost_unknown.labels(*labels, _tier(attempt.service_tier)).inc()
        if attempt.latency_ms is not None:
            self.attempt_duration.labels(*labels, _outcome(attempt.ok)).observe(
                attempt.latency_ms / 1000
            )

    def call_finished(self, call: CallTrace) -> None:
        """Count the call, its regenerations and its duration."""
        labels = (call.provider, call.model)
        outcome = _outcome(call.status == "ok")
        self.requests.labels(*labels, outcome).inc()
        if call.regenerations:
            self.regenerations.labels(*labels).inc(call.regenerations)
        if call.retries_denied:
            self.retries_denied.labels(*labels).inc(call.retries_denied)
        if call.latency_ms is not None:
            self.call_duration.labels(*labels, outcome).observe(call.latency_ms / 1000)

    def retry_denied(self, provider: str, model: str) -> None:
        """Count one retry the retry budget refused. Calls seen by this observer are counted when
        they end (``call.retries_denied``); this is for a caller counting refusals of its own."""
        self.retries_denied.labels(provider, model).inc()

    def breaker_changed(self, name: str, old: str, new: str) -> None:
        """Set the breaker's gauge (a circuit breaker's ``on_state_change`` callback)."""
        state = str(getattr(new, "value", new)).lower().replace("-", "_")
        if state not in CIRCUIT_STATES:
            raise ValueError(
                f"unknown circuit state {new!r}; expected one of {', '.join(CIRCUIT_STATES)}"
            )
        self.circuit_state.labels(name).set(CIRCUIT_STATES[state])


@dataclass(frozen=True)
class MetricsServer:
    """A running ``/metrics`` endpoint; ``close()`` (or leaving a ``with`` block) stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port the server listens on (useful after ``port=0``)."""
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        """The URL of the metrics page."""
        host = str(self.server.socket.getsockname()[0])
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(observer: PrometheusObserver, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """Serve the observer's metrics over HTTP in a daemon thread (``port=0`` picks a free port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f"metrics port must be an integer from 0 to 65535, got {port!r}")
    try:
        server, thread = start_http_server(port, addr=addr, registry=observer.registry)
    except OSError as error:
        raise ConfigurationError(
            f"cannot serve metrics on {addr}:{port}: {error.strerror or error}; "
            "choose another port or address"
        ) from error
    return MetricsServer(server, thread)


def write_textfile(observer: PrometheusObserver, path: str | os.PathLike[str]) -> None:
    """Write the metrics to ``path`` atomically; node_exporter's textfile collector reads *.prom."""
    target = os.fspath(path)
    try:
        write_to_textfile(target, observer.registry)
    except OSError as error:
        raise ConfigurationError(
            f"cannot write metrics to {target}: {error.strerror or error}"
        ) from error


class SandboxCollector:
    """Exports a sandbox's answers by status (``tweetgen sandbox serve --metrics-port``)."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox

    def collect(self) -> Iterator[Metric]:
        """One counter sample per status code answered so far."""
        family = CounterMetricFamily(
            "tweetgen_sandbox_answers",
            "Answers the sandbox sent, by HTTP status.",
            labels=["status_code"],
        )
        for status, count in sorted(dict(self.sandbox.answers).items()):
            family.add_metric([str(status)], count)
        yield family
        yield GaugeMetricFamily(
            "tweetgen_sandbox_requests",
            "Requests the sandbox received.",
            value=len(self.sandbox.requests),
        )
        quota = getattr(self.sandbox, "quota", None)
        if quota is not None:  # --quota-rpm / --quota-rps: what a fleet test compares against
            stats = quota.stats()
            yield CounterMetricFamily(
                "tweetgen_sandbox_quota_accepted", "Requests the quota admitted.", stats.accepted
            )
            yield CounterMetricFamily(
                "tweetgen_sandbox_quota_refused", "Requests the quota refused (429).", stats.refused
            )
            yield GaugeMetricFamily(
                "tweetgen_sandbox_quota_limit", "Requests admitted per window.", stats.limit
            )
            yield GaugeMetricFamily(
                "tweetgen_sandbox_quota_window_seconds", "The quota's window.", stats.window
            )


class SharedStateCollector:
    """The fleet-wide limits of this process (:mod:`tweetgen.shared`): whether each shared state
    answers, and how often this process fell back to its local limits (labelled by the URL without
    its password). Nothing while no shared state is in use."""

    def collect(self) -> Iterator[Metric]:
        """The two families, read at scrape time."""
        import sys

        module = sys.modules.get("tweetgen.shared")  # never imported just to say there is none
        fleets = module.fleets() if module is not None else []
        if not fleets:
            return
        available = GaugeMetricFamily(
            "tweetgen_shared_state_available",
            "1 while the shared state answers (the fleet's limits apply), else 0 (local limits).",
            labels=["shared"],
        )
        fallbacks = CounterMetricFamily(
            "tweetgen_shared_state_fallbacks",
            "Times this process fell back to its local limits.",
            labels=["shared"],
        )
        for fleet in fleets:
            available.add_metric([fleet.safe], 1.0 if fleet.up else 0.0)
            fallbacks.add_metric([fleet.safe], fleet.fallbacks)
        yield available
        yield fallbacks
