"""The seed's retry helpers, now :mod:`tweetgen.retry`."""

import _bootstrap  # noqa: F401  (src/ on the path in a bare checkout)
from tweetgen.retry import (
    RetryPolicy,
    aretry_with_custom_backoff,
    aretry_with_tenacity,
    is_retryable,
    retry_with_custom_backoff,
    retry_with_tenacity,
)

__all__ = [
    "RetryPolicy",
    "aretry_with_custom_backoff",
    "aretry_with_tenacity",
    "is_retryable",
    "retry_with_custom_backoff",
    "retry_with_tenacity",
]
