"""What every provider takes and returns: one attempt, no retries (the engine owns those)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["GenerationRequest", "GenerationResult", "Provider", "Usage"]


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt and its generation settings."""

    prompt: str
    system_instruction: str | None = None
    temperature: float | None = None
    max_output_tokens: int = 1024
    candidate_count: int = 1
    seed: int | None = None
    #: how much the model may think (:data:`tweetgen.thinking.LEVELS`; None: the default, unsaid)
    thinking: str | None = None
    #: the service tier asked for (flex, priority; None: standard)
    service_tier: str | None = None
    #: ask for a JSON array of this many strings (structured output; 0: plain text)
    json_items: int = 0


@dataclass(frozen=True)
class Usage:
    """Token counts the API reported (0 when it omitted them)."""

    input_tokens: int = 0
    output_tokens: int = 0
    thought_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True)
class GenerationResult:
    """The text of each candidate and what the API said about the call."""

    texts: tuple[str, ...]
    provider: str
    model: str
    finish_reasons: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model_version: str | None = None
    response_id: str | None = None
    status_code: int = 200
    latency_ms: float = 0.0
    #: the service tier that answered (standard, flex, priority, batch; None: not said)
    service_tier: str | None = None
    #: what this answer cost in US dollars (None: unknown; see :mod:`tweetgen.pricing`)
    cost_usd: float | None = None

    @property
    def text(self) -> str:
        """The first candidate's text."""
        return self.texts[0]

    def with_latency(self, latency_ms: float) -> GenerationResult:
        """This result with ``latency_ms`` (``dataclasses.replace`` costs 4x as much)."""
        return GenerationResult(
            self.texts,
            self.provider,
            self.model,
            self.finish_reasons,
            self.usage,
            self.model_version,
            self.response_id,
            self.status_code,
            latency_ms,
            self.service_tier,
            self.cost_usd,
        )


class Provider(Protocol):
    """One HTTP attempt against an LLM API, sync or async, raising the errors of ``errors``."""

    name: str
    model: str

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt."""
        ...

    async def agenerate(self, request: GenerationRequest) -> GenerationResult:
        """Make one attempt without blocking the event loop."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
