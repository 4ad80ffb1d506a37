"""The tweetgen exception tree; the retry predicate reads ``retryable`` from it.

::

    TweetGenError
    ├── ConfigurationError (ValueError)        bad settings, missing key        exit 2, never
    retried │   └── InputError                         bad topic, tone, max_words...    exit 2,
    never retried ├── APIError                               the server answered with an error │
    ├── AuthenticationError                401, 403, 400 API_KEY_INVALID    not retried │   ├──
    RateLimitError                     429                              retried only if asked │ ├──
    ModelNotFoundError                 404                              not retried │ ├──
    BadRequestError                    other 4xx (408 excepted)         not retried │   └──
    ServerError                        5xx, 408 (server timed out)      retried ├── NetworkError
    refused, reset, DNS, protocol    retried │   └── RequestTimeoutError                attempt over
    timeout or deadline retried ├── InvalidResponseError                   200 but not JSON / odd
    shape     retried │   ├── ResponseTooLargeError              2xx body over the size limit not
    retried │   └── RedirectError                      3xx (the base URL moved)         not retried
    ├── ContentBlockedError                    blockReason or a SAFETY finish   not retried ├──
    EmptyResponseError                     no text (e.g. MAX_TOKENS)        not retried ├──
    TweetValidationError                   the model kept breaking rules    not retried └──
    CircuitOpenError                       fast failure while open          not retried

Every error has ``attempts`` (set when the retry engine gives up) and ``retry_after`` (seconds the
server, or an open circuit breaker, asks to wait; ``None`` otherwise: tweetgen's own backoff and a
stop by the deadline never set it).

Bounded by construction: no message is longer than :data:`MAX_MESSAGE_LENGTH` characters (providers
cut text from the server to :data:`MAX_SERVER_TEXT` first, so their own advice survives), so a
server that answers with a 50 MB message cannot flood a log, a store or a terminal.

Decisions: an answer over the size limit is not retried, because the same request to the same
endpoint gives the same answer (a real ``generateContent`` answer is far below the default limit; an
endpoint that sends more is misconfigured or hostile), and retrying would read the oversized body
again. An *error* answer (4xx/5xx) over the limit keeps its status class (a 503 stays a retried
:class:`ServerError`), only its body is not read. A redirect means the base URL points at the wrong
place: not retried, and the error names the setting to fix. Both are :class:`InvalidResponseError`
subclasses, so ``except InvalidResponseError`` and provider fallback chains treat them as bad
answers.
"""

from __future__ import annotations

import datetime
from typing import Any

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "MAX_SERVER_TEXT",
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
    "RedirectError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ServerError",
    "TweetGenError",
    "TweetValidationError",
    "clip",
]

#: the longest text from a server (message, reason phrase, status) an error keeps
MAX_SERVER_TEXT = 1000
#: the longest message any tweetgen error carries (server text plus tweetgen's own advice)
MAX_MESSAGE_LENGTH = 2000


def clip(text: str, limit: int = MAX_SERVER_TEXT) -> str:
    """``text`` cut to ``limit`` characters, with a marker that says how much was cut."""
    if len(text) <= limit:
        return text
    marker = f"... [{len(text) - limit:,} more characters cut]"
    return text[:limit] + marker


class TweetGenError(Exception):
    """Base of every error tweetgen raises."""

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        message = clip(message, MAX_MESSAGE_LENGTH)
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.attempts: int | None = None
        self.latency_ms: float | None = None
        #: what ended the retries of a retryable error (``deadline``, ``retry budget``, ``circuit
        #: breaker``, ``attempts``, ``server hint``); ``None`` when it was not retried or not
        #: through the engine
        self.stopped_by: str | None = None

    @property
    def status_code(self) -> int | None:
        """The HTTP status of the failed attempt, or ``None`` when there was none."""
        return None

    def add_to_message(self, text: str) -> None:
        """Append ``text`` to the message (the retry engine says why it stopped); the length cap
        still holds."""
        self.message = clip(self.message + text, MAX_MESSAGE_LENGTH)
        self.args = (self.message, *self.args[1:])


class ConfigurationError(TweetGenError, ValueError):
    """The settings cannot work (missing key, bad URL, unwritable log file...).

    The message names the setting in words and names environment variables, never a Python
    parameter, so that it reads the same from Python and from the command line. ``setting`` is the
    keyword argument whose value is at fault (``"max_words"``), or ``None`` when the value came from
    elsewhere (the environment, ``.env``, which the message names) or no single setting is; the
    ``tweetgen`` command puts that option's flag before the message (``--max-words: the word limit
    must be ...``).
    """

    def __init__(
        self, message: str, *, setting: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.setting = setting


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
        self.status = clip(status) if status is not None else None
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
    """429: rate limit or quota exhausted; ``retry_after`` carries the server's hint.

    ``quota_kind`` says which kind of quota refused the request (:mod:`tweetgen.quotas`:
    ``per-minute``, ``per-day``, ``tokens-per-minute``, ``spend-cap``, ``prepay-depleted``,
    ``unknown``; ``None`` when the provider could not tell, e.g. a batch's own pause), ``quota_id``
    the server's name for it, ``resets_at`` when a daily quota comes back (UTC). A quota that no
    wait of minutes clears (a daily one, a spend cap, no credits) has ``retryable = False`` on the
    instance and no ``retry_after``: it is never retried, even with ``retry_rate_limits``.
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        quota_kind: str | None = None,
        quota_id: str | None = None,
        resets_at: datetime.datetime | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.quota_kind = quota_kind
        self.quota_id = clip(quota_id, 200) if quota_id is not None else None
        self.resets_at = resets_at


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
    """The attempt did not finish in time: ``timeout`` bounds a whole attempt (connecting, sending,
    reading the headers and the whole body) by the wall clock, and the retry deadline bounds an
    attempt in flight."""


class InvalidResponseError(TweetGenError):
    """A 2xx response whose body is not the JSON shape the API documents."""

    retryable = True


class ResponseTooLargeError(InvalidResponseError):
    """A 2xx answer over ``max_response_bytes`` (counted after decompression); not retried."""

    retryable = False

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class RedirectError(InvalidResponseError):
    """A 3xx answer: the base URL points at an address that moved; not retried."""

    retryable = False

    def __init__(self, message: str, *, status_code: int, location: str | None) -> None:
        super().__init__(message)
        self._status_code = status_code
        self.location = location

    @property
    def status_code(self) -> int:
        """The HTTP status of the redirect (301, 302, 307, 308...)."""
        return self._status_code


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
