"""OpenTelemetry spans: GenAI-convention call and attempt spans from real sandbox calls, and the
optional import."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

pytest.importorskip(
    "opentelemetry.sdk",
    reason=(
        "needs the otel extra: pip install -e '.[otel]' (or '.[dev]' for every optional test tool)"
    ),
)

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tweetgen import TweetGenerator
from tweetgen.config import load_settings
from tweetgen.errors import AuthenticationError, ConfigurationError
from tweetgen.otel import OpenTelemetryObserver, add_trace_ids, trace_ids
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.sandbox import SandboxServer
from tweetgen.trace import AttemptTrace, CallTrace, Observer

NAME = "generate_content m"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


@pytest.fixture
def obs(provider: TracerProvider) -> OpenTelemetryObserver:
    return OpenTelemetryObserver(tracer_provider=provider)


def generator(url: str, *observers: Observer) -> TweetGenerator:
    async def no_sleep(seconds: float) -> None:
        return None

    return TweetGenerator(
        provider=GeminiProvider(
            api_key="k", model="m", base_url=url, name="sandbox", secret_key=False
        ),
        settings=load_settings(env={}, dotenv_path=None),
        observers=observers,
        sleep=lambda s: None,
        async_sleep=no_sleep,
    )


def split(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The single call span and its attempt spans in start order."""
    calls = [s for s in spans if s.attributes and "tweetgen.request_id" in s.attributes]
    assert len(calls) == 1
    call = calls[0]
    attempts = [
        s for s in spans if s.parent is not None and s.parent.span_id == call.context.span_id
    ]
    assert len(attempts) == len(spans) - 1
    return call, sorted(attempts, key=lambda s: s.start_time or 0)


class Probe(Observer):
    """Records the current span's ids as each attempt starts (it runs after the OpenTelemetry
    observer)."""

    def __init__(self) -> None:
        self.ids: list[dict[str, str]] = []

    def attempt_started(self, call: CallTrace, attempt: AttemptTrace) -> None:
        self.ids.append(trace_ids())


def test_503_then_success_is_one_call_span_with_two_attempt_spans(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    with SandboxServer(faults="503") as server, generator(server.url, obs) as gen:
        tweet = gen.generate("Python")
    call, (first, second) = split(exporter.get_finished_spans())

    for span in (call, first, second):
        assert span.name == NAME
        assert span.kind is SpanKind.CLIENT
        assert span.attributes is not None
        assert span.attributes["gen_ai.operation.name"] == "generate_content"
        assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
        assert span.attributes["gen_ai.request.model"] == "m"
        assert span.context.trace_id == call.context.trace_id
    assert call.status.status_code is StatusCode.UNSET
    assert call.attributes is not None
    assert call.attributes["tweetgen.request_id"] == tweet.request_id
    assert call.attributes["tweetgen.attempts"] == 2
    assert call.attributes["tweetgen.regenerations"] == 0
    assert "error.type" not in call.attributes
    assert "gen_ai.usage.input_tokens" not in call.attributes

    assert first.status.status_code is StatusCode.ERROR
    assert first.attributes is not None
    assert first.attributes["error.type"] == "ServerError"
    assert first.attributes["http.response.status_code"] == 503
    assert "http.request.resend_count" not in first.attributes
    assert "gen_ai.usage.input_tokens" not in first.attributes

    assert second.status.status_code is StatusCode.UNSET
    assert second.attributes is not None
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["gen_ai.response.model"] == "m"
    assert second.attributes["gen_ai.response.finish_reasons"] == ("STOP",)
    assert second.attributes["gen_ai.usage.input_tokens"] == tweet.usage.input_tokens > 0
    assert second.attributes["gen_ai.usage.output_tokens"] == tweet.usage.output_tokens > 0
    assert "error.type" not in second.attributes


def test_a_failed_call_span_carries_the_error_type(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    with (
        SandboxServer(faults="401") as server,
        generator(server.url, obs) as gen,
        pytest.raises(AuthenticationError),
    ):
        gen.generate("Python")
    call, (attempt,) = split(exporter.get_finished_spans())

    assert call.attributes is not None
    assert call.attributes["error.type"] == "AuthenticationError"
    assert call.status.status_code is StatusCode.ERROR
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "AuthenticationError"
    assert attempt.attributes["http.response.status_code"] == 401


def test_spans_nest_under_the_callers_span_and_are_current_for_logs(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter, provider: TracerProvider
) -> None:
    probe = Probe()
    with SandboxServer(faults="503") as server, generator(server.url, obs, probe) as gen:
        with provider.get_tracer("job").start_as_current_span("job") as job:
            gen.generate("Python")
            after = trace_ids()
        outside = trace_ids()
    spans = exporter.get_finished_spans()
    call, attempts = split([s for s in spans if s.name != "job"])

    assert call.parent is not None
    assert call.parent.span_id == job.get_span_context().span_id
    assert probe.ids == [
        {"trace_id": f"{a.context.trace_id:032x}", "span_id": f"{a.context.span_id:016x}"}
        for a in attempts
    ]
    assert after == {
        "trace_id": f"{call.context.trace_id:032x}",
        "span_id": f"{job.get_span_context().span_id:016x}",
    }
    assert outside == {}


def test_concurrent_async_calls_keep_their_spans_apart(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    async def both(gen: TweetGenerator) -> None:
        await asyncio.gather(gen.agenerate("Python"), gen.agenerate("Rust"))
        await gen.aclose()

    with SandboxServer(faults="503") as server, generator(server.url, obs) as gen:
        asyncio.run(both(gen))
    spans = exporter.get_finished_spans()
    calls = [s for s in spans if s.parent is None]

    assert len(calls) == 2
    assert calls[0].context.trace_id != calls[1].context.trace_id
    for call in calls:
        children = [
            s for s in spans if s.parent is not None and s.parent.span_id == call.context.span_id
        ]
        assert {s.context.trace_id for s in children} == {call.context.trace_id}
        assert call.attributes is not None
        assert len(children) == call.attributes["tweetgen.attempts"]
    assert len(spans) == 2 + 3
    assert trace_ids() == {}


def replay(
    obs: Observer, call: CallTrace, attempts: list[AttemptTrace], finish: bool = True
) -> None:
    obs.call_started(call)
    for attempt in attempts:
        call.attempts.append(attempt)
        obs.attempt_started(call, attempt)
        if finish:
            obs.attempt_finished(call, attempt)
    obs.call_finished(call)


def test_a_network_error_attempt_has_no_status_code(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    call = CallTrace(request_id="r1", provider="openai", model="m")
    call.status, call.error_type = "failed", "NetworkError"
    replay(
        obs,
        call,
        [AttemptTrace(1, latency_ms=3.0, error_type="NetworkError", error_message="reset")],
    )
    call_span, (attempt,) = split(exporter.get_finished_spans())

    assert call_span.attributes is not None
    assert call_span.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "NetworkError"
    assert "http.response.status_code" not in attempt.attributes
    assert attempt.status.description == "reset"


def test_an_attempt_left_open_is_closed_with_the_calls_error(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    call = CallTrace(request_id="r1", provider="acme", model="m")
    call.status, call.error_type = "failed", "CancelledError"
    replay(obs, call, [AttemptTrace(1)], finish=False)
    call_span, (attempt,) = split(exporter.get_finished_spans())

    assert call_span.attributes is not None
    assert call_span.attributes["gen_ai.provider.name"] == "acme"
    assert attempt.attributes is not None
    assert attempt.attributes["error.type"] == "CancelledError"
    assert trace_ids() == {}


def test_hooks_for_a_call_it_never_saw_are_ignored(
    obs: OpenTelemetryObserver, exporter: InMemorySpanExporter
) -> None:
    call = CallTrace(request_id="r1", provider="sandbox", model="m")
    attempt = AttemptTrace(1)
    obs.attempt_started(call, attempt)
    obs.attempt_finished(call, attempt)
    obs.call_finished(call)
    assert exporter.get_finished_spans() == ()


def test_add_trace_ids_stamps_events_inside_a_span_only(provider: TracerProvider) -> None:
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}
    with provider.get_tracer("t").start_as_current_span("s") as span:
        ids = span.get_span_context()
        event: dict[str, Any] = add_trace_ids(None, "info", {"event": "x", "span_id": "mine"})  # type: ignore[assignment]
    assert event == {"event": "x", "trace_id": f"{ids.trace_id:032x}", "span_id": "mine"}


def test_a_missing_opentelemetry_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigurationError) as caught:
        OpenTelemetryObserver()
    # the README's words: pip install -e '.[otel]' from a checkout, pip install 'tweetgen[otel]'
    # from an index
    assert "pip install -e '.[otel]'" in str(caught.value)
    assert "pip install 'tweetgen[otel]'" in str(caught.value)


def test_importing_tweetgen_never_imports_opentelemetry() -> None:
    code = (
        "import sys\n"
        "import tweetgen, tweetgen.otel, tweetgen.metrics\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'opentelemetry'], "
        "'opentelemetry imported'\n"
        "assert tweetgen.otel.trace_ids() == {}\n"
        "assert tweetgen.otel.add_trace_ids(None, 'info', {'event': 'x'}) == {'event': 'x'}\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
