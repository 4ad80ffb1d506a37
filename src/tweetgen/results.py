"""What a generation returns: a :class:`Tweet`, or a :class:`Thread` of them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .providers.base import Usage

__all__ = ["Thread", "Tweet"]


@dataclass(frozen=True)
class Tweet:
    """A generated tweet and how it was made; ``valid`` is always true for returned tweets."""

    text: str
    provider: str
    model: str
    attempts: int
    latency_ms: float
    usage: Usage = field(default_factory=Usage)
    topic: str = ""
    tone: str = ""
    request_id: str = ""
    regenerations: int = 0
    weighted_length: int = 0
    words: int = 0
    valid: bool = True
    model_version: str | None = None
    #: the service tier that answered, when the API said (``standard``, ``flex``, ...)
    service_tier: str | None = None
    #: what the call cost so far in US dollars, every attempt included (None: unknown)
    cost_usd: float | None = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` prints)."""
        return asdict(self)


@dataclass(frozen=True)
class Thread:
    """A thread of valid tweets from one call."""

    tweets: tuple[Tweet, ...]
    provider: str
    model: str
    attempts: int
    latency_ms: float
    request_id: str = ""
    regenerations: int = 0

    @property
    def texts(self) -> list[str]:
        """The tweets' texts in order."""
        return [t.text for t in self.tweets]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what ``--json`` prints)."""
        return asdict(self)
