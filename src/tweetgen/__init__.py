"""tweetgen: tweets from Gemini that keep coming when the API does not cooperate."""

from .api import agenerate, agenerate_tweet, generate, generate_thread, generate_tweet, generate_variants
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
    RequestTimeoutError,
    ServerError,
    TweetGenError,
    TweetValidationError,
)
from .generator import Thread, Tweet, TweetGenerator
from .logs import setup_logging
from .prompts import PromptTemplate, TemplateRegistry, register_tone
from .request import TweetRequest
from .retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)
from .trace import CallTrace, Observer

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
    "RequestTimeoutError",
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
