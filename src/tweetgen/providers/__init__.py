"""LLM providers: each makes one attempt and raises the typed errors of :mod:`tweetgen.errors`.

The HTTP providers are imported on first use (PEP 562), so ``from tweetgen import Tweet`` (which
needs :class:`Usage` from :mod:`.base`) does not load httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import GenerationRequest, GenerationResult, Provider, Usage

if TYPE_CHECKING:
    from .gemini import GeminiProvider
    from .openai import OpenAIProvider

__all__ = [
    "GeminiProvider",
    "GenerationRequest",
    "GenerationResult",
    "OpenAIProvider",
    "Provider",
    "Usage",
]

_LAZY = {"GeminiProvider": "gemini", "OpenAIProvider": "openai"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
