"""OpenTelemetry spans for tweetgen calls, named and tagged by the GenAI semantic conventions (extra
``otel``).

One call is one ``generate_content {model}`` CLIENT span; each HTTP attempt is a child span of the
same name with ``http.request.resend_count`` on retries, the response model, token usage, finish
reasons, status code, and ``error.type`` with an ERROR status when it failed. Token usage sits on
the attempt spans only, so backends that sum usage over a trace do not count it twice. While a call
or attempt runs its span is the current span, so :func:`add_trace_ids` stamps log events with its
ids.

Importing this module never imports ``opentelemetry``; :class:`OpenTelemetryObserver` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import OTEL_INSTALL_HINT
from .errors import ConfigurationError
from .logs import add_trace_ids, redact_text, trace_ids
from .trace import AttemptTrace, CallTrace, Observer

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = [
    "NO_PROVIDER_WARNING",
    "OPERATION_NAME",
    "PROVIDER_NAMES",
    "OpenTelemetryObserver",
    "add_trace_ids",
    "trace_ids",
    "tracer_provider_configured",
]

OPERATION_NAME = "generate_content"
#: what ``--otel`` says (once, on stderr) when nothing would receive its spans
NO_PROVIDER_WARNING = (
    "no OpenTelemetry tracer provider is configured, so no spans will be exported: "
    "run the command under opentelemetry-instrument with the OTEL_* environment variables "
    "(e.g. OTEL_TRACES_EXPORTER=otlp and OTEL_EXPORTER_OTLP_ENDPOINT), "
    "or call opentelemetry.trace.set_tracer_provider() in your code"
)

#: tweetgen provider -> ``gen_ai.provider.name`` (the sandbox speaks Gemini's API); others pass
#: through.
PROVIDER_NAMES = {"gemini": "gcp.gemini", "sandbox": "gcp.gemini", "openai": "openai"}


@dataclass
class _Spans:
    """One call's open spans and the context tokens that made them current."""

    call: Span
    token: Token[Context]
    attempts: dict[int, tuple[Span, Token[Context]]] = field(default_factory=dict)


def _request_attributes(call: CallTrace) -> dict[str, AttributeValue]:
    return {
        "gen_ai.operation.name": OPERATION_NAME,
        "gen_ai.provider.name": PROVIDER_NAMES.get(call.provider, call.provider),
        "gen_ai.request.model": call.model,
    }


def _response_attributes(attempt: AttemptTrace) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    if attempt.status_code is not None:
        attributes["http.response.status_code"] = attempt.status_code
    if attempt.response_model:
        attributes["gen_ai.response.model"] = attempt.response_model
    if attempt.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [attempt.finish_reason]
    if attempt.ok:
        attributes["gen_ai.usage.input_tokens"] = attempt.input_tokens
        attributes["gen_ai.usage.output_tokens"] = attempt.output_tokens
    return attributes


def _fail(span: Span, error_type: str, message: str | None) -> None:
    """Mark a span failed: ``error.type`` plus an ERROR status with the (redacted) message."""
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(Status(StatusCode.ERROR, redact_text(message) if message else error_type))


def tracer_provider_configured() -> bool:
    """Whether a real tracer provider is set globally (the default proxy and the no-op provider
    export nothing)."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


class OpenTelemetryObserver(Observer):
    """Turns every call into a ``generate_content {model}`` span with one child span per attempt."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as error:
            raise ConfigurationError(
                f"OpenTelemetry tracing needs the otel extra: {OTEL_INSTALL_HINT}"
            ) from error
        from . import __version__

        self.tracer = trace.get_tracer("tweetgen", __version__, tracer_provider=tracer_provider)
        self._key = f"tweetgen.otel.{id(self)}"

    def __repr__(self) -> str:
        return f"OpenTelemetryObserver(tracer={self.tracer!r})"

    def call_started(self, call: CallTrace) -> None:
        """Open the call span (a child of whatever span is current) and make it current."""
        from opentelemetry import context, trace

        span = self.tracer.start_span(
            f"{OPERATION_NAME} {call.model}",
            kind=trace.SpanKind.CLIENT,
            attributes=_request_attributes(call),
        )
        span.set_attribute("tweetgen.request_id", call.request_id)
        call.scratch[self._key] = _Spans(span, context.attach(trace.set_span_in_context(span)))

    def attempt_started(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """Open the attempt's span under the call span and make it current."""
        from opentelemetry import context, trace

        spans: _Spans | None = call.scratch.get(self._key)
        if spans is None:
            return
        attributes = _request_attributes(call)
        if attempt.number > 1:
            attributes["http.request.resend_count"] = attempt.number - 1
        span = self.tracer.start_span(
            f"{OPERATION_NAME} {call.model}",
            context=trace.set_span_in_context(spans.call),
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
        )
        spans.attempts[id(attempt)] = (span, context.attach(trace.set_span_in_context(span)))

    def attempt_finished(self, call: CallTrace, attempt: AttemptTrace) -> None:
        """Record how the attempt ended and close its span."""
        from opentelemetry import context

        spans: _Spans | None = call.scratch.get(self._key)
        if spans is None or id(attempt) not in spans.attempts:
            return
        span, token = spans.attempts.pop(id(attempt))
        context.detach(token)
        span.set_attributes(_response_attributes(attempt))
        if attempt.error_type is not None:
            _fail(span, attempt.error_type, attempt.error_message)
        span.end()

    def call_finished(self, call: CallTrace) -> None:
        """Close any attempt span left open (a cancelled attempt), then the call span."""
        from opentelemetry import context

        spans: _Spans | None = call.scratch.pop(self._key, None)
        if spans is None:
            return
        for span, token in reversed(list(spans.attempts.values())):
            context.detach(token)
            _fail(span, call.error_type or "_OTHER", call.error_message)
            span.end()
        context.detach(spans.token)
        spans.call.set_attributes(
            {"tweetgen.attempts": len(call.attempts), "tweetgen.regenerations": call.regenerations}
        )
        if call.status != "ok":
            _fail(spans.call, call.error_type or "_OTHER", call.error_message)
        spans.call.end()
