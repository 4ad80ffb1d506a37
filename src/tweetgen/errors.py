"""The tweetgen exception tree; the retry predicate reads ``retryable`` from it.

::

    TweetGenError
    ├── ConfigurationError (ValueError)        bad settings, missing key        exit 2, never retried
    │   └── InputError                         bad topic, tone, max_words...    exit 2, never retried
    ├── APIError                               the server answered with an error
    │   ├── AuthenticationError                401, 403, 400 API_KEY_INVALID    not retried
    │   ├── RateLimitError                     429                              retried only if asked
    │   ├── ModelNotFoundError                 404                              not retried
    │   ├── BadRequestError                    other 4xx (408 excepted)         not retried
    │   └── ServerError                        5xx, 408 (server timed out)      retried
    ├── NetworkError                           refused, reset, DNS, protocol    retried
    │   └── RequestTimeoutError                connect / read / write timeout   retried
    ├── InvalidResponseError                   200 but not JSON / odd shape     retried
    ├── ContentBlockedError                    blockReason or a SAFETY finish   not retried
    ├── EmptyResponseError                     no text (e.g. MAX_TOKENS)        not retried
    ├── TweetValidationError                   the model kept breaking rules    not retried
    └── CircuitOpenError                       fast failure while open          not retried

Every error has ``attempts`` (set when the retry engine gives up) and ``retry_after`` (seconds the
server asked to wait, or ``None``).
"""

from __future__ import annotations

from typing import Any

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
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "TweetGenError",
    "TweetValidationError",
]


class TweetGenError(Exception):
    """Base of every error tweetgen raises."""

    retryable: bool = False
    exit_code: int = 1

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.attempts: int | None = None
        self.latency_ms: float | None = None

    @property
    def status_code(self) -> int | None:
        """The HTTP status of the failed attempt, or ``None`` when there was none."""
        return None


class ConfigurationError(TweetGenError, ValueError):
    """The settings cannot work (missing key, bad URL, unwritable log file...)."""

    exit_code = 2


class InputError(ConfigurationError):
    """A request argument is invalid (empty topic, unknown tone, max_words out of range...)."""


class APIError(TweetGenError):
    """The API answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        status: str | None = None,
        details: list[Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self._status_code = status_code
        self.status = status
        self.details = details or []

    @property
    def status_code(self) -> int:
        """The HTTP status code of the response."""
        return self._status_code

    def __str__(self) -> str:
        return f"HTTP {self._status_code}: {self.message}"


class AuthenticationError(APIError):
    """The key is missing, invalid or lacks permission."""


class RateLimitError(APIError):
    """429: rate limit or quota exhausted; ``retry_after`` carries the server's hint."""

    retryable = True


class ModelNotFoundError(APIError):
    """404: the model does not exist or was retired."""


class BadRequestError(APIError):
    """Any other 4xx: the request itself is wrong."""


class ServerError(APIError):
    """5xx: a transient server-side failure."""

    retryable = True


class NetworkError(TweetGenError):
    """The request did not complete: connection refused or reset, DNS, protocol error."""

    retryable = True


class RequestTimeoutError(NetworkError):
    """Connecting, sending or reading took longer than the configured timeout."""


class InvalidResponseError(TweetGenError):
    """A 2xx response whose body is not the JSON shape the API documents."""

    retryable = True


class ContentBlockedError(TweetGenError):
    """The prompt or the answer was blocked by safety filters."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class EmptyResponseError(TweetGenError):
    """The model answered without any text (for example MAX_TOKENS spent on thinking)."""

    def __init__(self, message: str, *, finish_reason: str | None = None) -> None:
        super().__init__(message)
        self.finish_reason = finish_reason


class TweetValidationError(TweetGenError):
    """No candidate passed the tweet rules; carries the best candidate and the reasons."""

    def __init__(self, message: str, *, best: str | None, reasons: tuple[str, ...]) -> None:
        super().__init__(message)
        self.best = best
        self.reasons = reasons


class CircuitOpenError(TweetGenError):
    """The circuit breaker is open; calls fail fast until ``retry_after`` seconds pass."""
