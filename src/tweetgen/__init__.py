"""tweetgen: tweets from Gemini that keep coming when the API does not cooperate.

Names are imported on first use (PEP 562), so ``import tweetgen``, ``from tweetgen import Tweet``
and ``tweetgen --help`` load neither httpx, structlog, tenacity nor a provider; ``from tweetgen
import generate_tweet`` imports what that needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CircuitOpenError,
    ConfigurationError,
    ContentBlockedError,
    EmptyResponseError,
    InputError,
    InvalidResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RedirectError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ServerError,
    TweetGenError,
    TweetValidationError,
)

if TYPE_CHECKING:
    from .api import (
        agenerate,
        agenerate_tweet,
        generate,
        generate_thread,
        generate_tweet,
        generate_variants,
    )
    from .generator import TweetGenerator
    from .logs import setup_logging
    from .prompts import PromptTemplate, TemplateRegistry, register_tone
    from .request import TweetRequest
    from .results import Thread, Tweet
    from .retry import (
        RetryPolicy,
        aretry_with_custom_backoff,
        aretry_with_tenacity,
        retry_with_custom_backoff,
        retry_with_tenacity,
    )
    from .trace import CallTrace, Observer

_LAZY = {
    "CallTrace": "trace",
    "Observer": "trace",
    "PromptTemplate": "prompts",
    "RetryPolicy": "retry",
    "TemplateRegistry": "prompts",
    "Thread": "results",
    "Tweet": "results",
    "TweetGenerator": "generator",
    "TweetRequest": "request",
    "agenerate": "api",
    "agenerate_tweet": "api",
    "aretry_with_custom_backoff": "retry",
    "aretry_with_tenacity": "retry",
    "generate": "api",
    "generate_thread": "api",
    "generate_tweet": "api",
    "generate_variants": "api",
    "register_tone": "prompts",
    "retry_with_custom_backoff": "retry",
    "retry_with_tenacity": "retry",
    "setup_logging": "logs",
}

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CallTrace",
    "CircuitOpenError",
    "ConfigurationError",
    "ContentBlockedError",
    "EmptyResponseError",
    "InputError",
    "InvalidResponseError",
    "ModelNotFoundError",
    "NetworkError",
    "Observer",
    "PromptTemplate",
    "RateLimitError",
    "RedirectError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "TemplateRegistry",
    "Thread",
    "Tweet",
    "TweetGenError",
    "TweetGenerator",
    "TweetRequest",
    "TweetValidationError",
    "__version__",
    "agenerate",
    "agenerate_tweet",
    "aretry_with_custom_backoff",
    "aretry_with_tenacity",
    "generate",
    "generate_thread",
    "generate_tweet",
    "generate_variants",
    "load_settings",
    "register_tone",
    "retry_with_custom_backoff",
    "retry_with_tenacity",
    "setup_logging",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tweetgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
