"""Prometheus metrics: the observer fed hand-built traces, then a real sandbox call scraped over
HTTP."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tweetgen import TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import ConfigurationError
from tweetgen.metrics import PrometheusObserver, serve, write_textfile
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import AttemptTrace, CallTrace, Observer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SANDBOX = {"provider": "sandbox", "model": "m"}


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by sample name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when it was never recorded."""
    return samples.get((name, frozenset({**SANDBOX, **labels}.items())), 0.0)


def scrape(obs: PrometheusObserver) -> Samples:
    return parse(generate_latest(obs.registry).decode())


def replay(obs: Observer, call: CallTrace, attempts: list[AttemptTrace]) -> None:
    """Drive the hooks the way the generator and the retry engine do."""
    obs.call_started(call)
    for attempt in attempts:
        call.attempts.append(attempt)
        obs.attempt_started(call, attempt)
        obs.attempt_finished(call, attempt)
    obs.call_finished(call)


def server_error(number: int = 1) -> AttemptTrace:
    return AttemptTrace(
        number,
        latency_ms=120.0,
        status_code=503,
        error_type="ServerError",
        error_message="HTTP 503",
    )


def success(number: int = 2, delay: float = 0.5) -> AttemptTrace:
    return AttemptTrace(
        number,
        delay_before=delay,
        latency_ms=800.0,
        status_code=200,
        input_tokens=12,
        output_tokens=30,
    )


def trace(status: str = "ok", latency_ms: float = 1420.0, **fields: object) -> CallTrace:
    call = CallTrace(request_id="r1", provider="sandbox", model="m", **fields)  # type: ignore[arg-type]
    call.status, call.latency_ms = status, latency_ms
    return call


@pytest.fixture
def obs() -> PrometheusObserver:
    return PrometheusObserver()


def test_503_then_success_counts_the_call_its_attempts_retry_wait_and_tokens(
    obs: PrometheusObserver,
) -> None:
    replay(obs, trace(), [server_error(), success()])
    samples = scrape(obs)

    assert value(samples, "tweetgen_requests_total", outcome="ok") == 1
    assert value(samples, "tweetgen_requests_total", outcome="failed") == 0
    assert (
        value(samples, "tweetgen_attempts_total", status_code="503", error_type="ServerError") == 1
    )
    assert value(samples, "tweetgen_attempts_total", status_code="200", error_type="none") == 1
    assert value(samples, "tweetgen_retries_total") == 1
    assert value(samples, "tweetgen_retry_wait_seconds_total") == 0.5
    assert value(samples, "tweetgen_tokens_total", direction="input") == 12
    assert value(samples, "tweetgen_tokens_total", direction="output") == 30
    assert value(samples, "tweetgen_regenerations_total") == 0


def test_costs_are_counted_by_tier_and_unknown_costs_apart(obs: PrometheusObserver) -> None:
    flex = success(1)
    flex.thought_tokens, flex.cost_usd, flex.service_tier = 200, 0.00125, "flex"
    standard = success(1)
    standard.cost_usd = 0.0025  # no tier said: standard
    odd = success(1)
    odd.cost_usd, odd.service_tier = 0.5, "Some-New-Tier"
    unknown = success(1)
    unknown.cost_usd = None
    replay(obs, trace(), [server_error(), flex])  # the failed attempt cost 0: not counted
    for attempt in (standard, odd, unknown):
        replay(obs, trace(), [attempt])
    samples = scrape(obs)
    assert value(samples, "tweetgen_cost_usd_total", tier="flex") == pytest.approx(0.00125)
    assert value(samples, "tweetgen_cost_usd_total", tier="standard") == pytest.approx(0.0025)
    assert value(samples, "tweetgen_cost_usd_total", tier="other") == pytest.approx(0.5)
    assert value(samples, "tweetgen_cost_unknown_total", tier="standard") == 1
    assert value(samples, "tweetgen_tokens_total", direction="thinking") == 200
    tiers = {dict(labels)["tier"] for name, labels in samples if name.startswith("tweetgen_cost")}
    assert tiers == {"flex", "standard", "other"}


def test_a_priced_sandbox_call_is_counted_in_dollars(obs: PrometheusObserver) -> None:
    pytest.importorskip("genai_prices")
    recorder = Recorder()
    with SandboxServer() as server:
        provider = GeminiProvider(
            api_key="k", model="gemini-2.5-flash", base_url=server.url, name="sandbox"
        )
        settings = load_settings(env={}, dotenv_path=None)
        with TweetGenerator(provider=provider, settings=settings, observers=[obs, recorder]) as gen:
            gen.generate("Python")
    attempt = recorder.calls[0].attempts[-1]
    # gemini-2.5-flash: $0.30 in, $2.50 out (thinking included) per million tokens
    thought = attempt.thought_tokens
    cost = (attempt.input_tokens * 0.30 + (attempt.output_tokens + thought) * 2.50) / 1e6
    labels = {"provider": "sandbox", "model": "gemini-2.5-flash", "tier": "standard"}
    samples = scrape(obs)
    key = ("tweetgen_cost_usd_total", frozenset(labels.items()))
    assert samples[key] == pytest.approx(cost, rel=1e-9)
    assert cost > 0


def test_durations_land_in_llm_sized_buckets(obs: PrometheusObserver) -> None:
    replay(obs, trace(), [server_error(), success()])
    samples = scrape(obs)

    call = "tweetgen_call_duration_seconds"
    assert value(samples, f"{call}_count", outcome="ok") == 1
    assert value(samples, f"{call}_sum", outcome="ok") == pytest.approx(1.42)
    assert value(samples, f"{call}_bucket", outcome="ok", le="1.0") == 0
    assert value(samples, f"{call}_bucket", outcome="ok", le="2.0") == 1
    assert value(samples, f"{call}_bucket", outcome="ok", le="60.0") == 1
    attempt = "tweetgen_attempt_duration_seconds"
    assert value(samples, f"{attempt}_sum", outcome="failed") == pytest.approx(0.12)
    assert value(samples, f"{attempt}_sum", outcome="ok") == pytest.approx(0.8)


def test_a_failed_call_is_counted_failed_with_its_regenerations(obs: PrometheusObserver) -> None:
    attempt = AttemptTrace(1, latency_ms=50.0, status_code=401, error_type="AuthenticationError")
    replay(obs, trace("failed", 60.0, regenerations=2), [attempt])
    samples = scrape(obs)

    assert value(samples, "tweetgen_requests_total", outcome="failed") == 1
    assert value(samples, "tweetgen_requests_total", outcome="ok") == 0
    assert (
        value(
            samples, "tweetgen_attempts_total", status_code="401", error_type="AuthenticationError"
        )
        == 1
    )
    assert value(samples, "tweetgen_call_duration_seconds_count", outcome="failed") == 1
    assert value(samples, "tweetgen_regenerations_total") == 2
    assert value(samples, "tweetgen_retries_total") == 0


def test_a_network_error_has_status_code_none_and_no_tokens(obs: PrometheusObserver) -> None:
    dropped = AttemptTrace(
        1, latency_ms=5.0, error_type="NetworkError", error_message="connection reset"
    )
    replay(obs, trace("failed", 5.0), [dropped])
    samples = scrape(obs)

    assert (
        value(samples, "tweetgen_attempts_total", status_code="none", error_type="NetworkError")
        == 1
    )
    assert not [key for key in samples if key[0] == "tweetgen_tokens_total"]


def test_an_attempt_without_latency_counts_its_retry_but_no_duration(
    obs: PrometheusObserver,
) -> None:
    call = trace()
    obs.attempt_started(call, AttemptTrace(2, delay_before=1.5))
    obs.attempt_finished(call, AttemptTrace(2))
    samples = scrape(obs)

    assert value(samples, "tweetgen_retries_total") == 1
    assert value(samples, "tweetgen_retry_wait_seconds_total") == 1.5
    assert value(samples, "tweetgen_attempt_duration_seconds_count", outcome="failed") == 0


def test_observers_keep_their_own_registries_and_leave_the_global_one_alone() -> None:
    first, second = PrometheusObserver(), PrometheusObserver()
    replay(first, trace(), [success(1, 0.0)])

    assert value(scrape(first), "tweetgen_requests_total", outcome="ok") == 1
    assert value(scrape(second), "tweetgen_requests_total", outcome="ok") == 0
    assert (
        REGISTRY.get_sample_value("tweetgen_requests_total", {**SANDBOX, "outcome": "ok"}) is None
    )
    registry = CollectorRegistry()
    assert PrometheusObserver(registry).registry is registry


def test_breaker_changes_set_the_circuit_gauge(obs: PrometheusObserver) -> None:
    obs.breaker_changed("gemini", "closed", "open")
    obs.breaker_changed("sandbox", "open", "half-open")
    assert obs.registry.get_sample_value("tweetgen_circuit_state", {"breaker": "gemini"}) == 1
    assert obs.registry.get_sample_value("tweetgen_circuit_state", {"breaker": "sandbox"}) == 2
    obs.breaker_changed("gemini", "half_open", "CLOSED")
    assert obs.registry.get_sample_value("tweetgen_circuit_state", {"breaker": "gemini"}) == 0
    with pytest.raises(ValueError, match="unknown circuit state 'ajar'"):
        obs.breaker_changed("gemini", "closed", "ajar")


def test_denied_retries_are_counted(obs: PrometheusObserver) -> None:
    obs.retry_denied("sandbox", "m")
    obs.retry_denied("sandbox", "m")
    assert value(scrape(obs), "tweetgen_retries_denied_total") == 2


# --- a real call through the sandbox, exported over HTTP and to a textfile ---------------------


class Recorder(Observer):
    """Keeps the finished call's trace."""

    def __init__(self) -> None:
        self.calls: list[CallTrace] = []

    def call_finished(self, call: CallTrace) -> None:
        self.calls.append(call)


@pytest.fixture
def real_call(obs: PrometheusObserver) -> CallTrace:
    """A 503-then-success ``generate`` through the sandbox; returns its trace."""
    recorder = Recorder()
    with SandboxServer(faults="503") as server:
        provider = GeminiProvider(
            api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
        )
        generator = TweetGenerator(
            provider=provider,
            settings=load_settings(env={}, dotenv_path=None),
            observers=[obs, recorder],
            sleep=lambda s: None,
        )
        with generator:
            generator.generate("Python")
    return recorder.calls[0]


def assert_matches(samples: Samples, call: CallTrace) -> None:
    """The scraped counters tell the same story as the call's trace."""
    assert [(a.status_code, a.error_type) for a in call.attempts] == [
        (503, "ServerError"),
        (200, None),
    ]
    assert value(samples, "tweetgen_requests_total", outcome="ok") == 1
    attempts = {
        labels: v for (name, labels), v in samples.items() if name == "tweetgen_attempts_total"
    }
    assert sum(attempts.values()) == len(call.attempts) == 2
    assert (
        value(samples, "tweetgen_attempts_total", status_code="503", error_type="ServerError") == 1
    )
    assert value(samples, "tweetgen_attempts_total", status_code="200", error_type="none") == 1
    assert value(samples, "tweetgen_retries_total") == 1
    assert value(samples, "tweetgen_retry_wait_seconds_total") == pytest.approx(call.waited_seconds)
    assert (
        value(samples, "tweetgen_tokens_total", direction="input")
        == call.attempts[1].input_tokens
        > 0
    )
    assert (
        value(samples, "tweetgen_tokens_total", direction="output")
        == call.attempts[1].output_tokens
        > 0
    )
    assert value(samples, "tweetgen_cost_unknown_total", tier="standard") == 1  # model m: no price
    assert call.latency_ms is not None
    assert value(samples, "tweetgen_call_duration_seconds_sum", outcome="ok") == pytest.approx(
        call.latency_ms / 1000
    )


@pytest.fixture
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_real_call_is_served_on_metrics(
    obs: PrometheusObserver, real_call: CallTrace, free_port: int
) -> None:
    with serve(obs, free_port) as server, httpx.Client(trust_env=False) as client:
        assert server.port == free_port
        assert server.url == f"http://127.0.0.1:{free_port}/metrics"
        response = client.get(server.url)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert_matches(parse(response.text), real_call)


def test_a_real_call_is_written_to_a_textfile_atomically(
    obs: PrometheusObserver, real_call: CallTrace, tmp_path: Path
) -> None:
    path = tmp_path / "tweetgen.prom"
    write_textfile(obs, path)
    write_textfile(obs, str(path))

    assert_matches(parse(path.read_text()), real_call)
    assert [p.name for p in tmp_path.iterdir()] == ["tweetgen.prom"]


def test_an_unwritable_textfile_path_is_a_configuration_error(
    obs: PrometheusObserver, tmp_path: Path
) -> None:
    path = tmp_path / "missing" / "tweetgen.prom"
    with pytest.raises(ConfigurationError, match=r"cannot write metrics to .*missing"):
        write_textfile(obs, path)


def test_a_port_in_use_is_a_configuration_error(obs: PrometheusObserver) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serve(obs, port)


def test_port_zero_serves_on_a_free_port(obs: PrometheusObserver) -> None:
    with serve(obs, 0) as server:
        assert server.port > 0
        assert httpx.get(server.url, trust_env=False).status_code == 200


@pytest.mark.parametrize("port", [-1, 65536, True, "9464"])
def test_a_bad_port_is_a_configuration_error(obs: PrometheusObserver, port: object) -> None:
    with pytest.raises(ConfigurationError, match="metrics port must be an integer"):
        serve(obs, port)  # type: ignore[arg-type]
