"""tweetgen: tweets from Gemini that keep coming when the API does not cooperate."""

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
from .generator import Tweet, TweetGenerator, agenerate, agenerate_tweet, generate, generate_tweet
from .logs import setup_logging
from .prompts import PromptTemplate, TemplateRegistry, register_tone
from .retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    retry_with_custom_backoff,
    retry_with_tenacity,
)

__version__ = "0.1.0"

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CircuitOpenError",
    "ConfigurationError",
    "ContentBlockedError",
    "EmptyResponseError",
    "InputError",
    "InvalidResponseError",
    "ModelNotFoundError",
    "NetworkError",
    "PromptTemplate",
    "RateLimitError",
    "RequestTimeoutError",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "TemplateRegistry",
    "Tweet",
    "TweetGenError",
    "TweetGenerator",
    "TweetValidationError",
    "__version__",
    "agenerate",
    "agenerate_tweet",
    "aretry_with_custom_backoff",
    "aretry_with_tenacity",
    "generate",
    "generate_tweet",
    "load_settings",
    "register_tone",
    "retry_with_custom_backoff",
    "retry_with_tenacity",
    "setup_logging",
]
