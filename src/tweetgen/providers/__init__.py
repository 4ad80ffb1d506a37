"""LLM providers: each makes one attempt and raises the typed errors of :mod:`tweetgen.errors`."""

from .base import GenerationRequest, GenerationResult, Provider, Usage
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
