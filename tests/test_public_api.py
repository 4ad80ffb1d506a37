"""The public surface: what `tweetgen` exports, and that importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tweetgen

DOCUMENTED = {
    "generate_tweet", "agenerate_tweet", "generate", "agenerate", "generate_variants",
    "generate_thread", "TweetGenerator", "Tweet", "Thread", "TweetRequest", "RetryPolicy",
    "setup_logging", "Observer", "CallTrace", "retry_with_tenacity",
    "retry_with_custom_backoff", "aretry_with_tenacity", "aretry_with_custom_backoff",
    "TweetGenError", "ConfigurationError", "InputError", "APIError", "AuthenticationError",
    "RateLimitError", "ModelNotFoundError", "BadRequestError", "ServerError", "NetworkError",
    "RequestTimeoutError", "InvalidResponseError", "ContentBlockedError", "EmptyResponseError",
    "TweetValidationError", "CircuitOpenError",
}  # fmt: skip


def test_all_is_sorted_and_has_the_documented_names() -> None:
    names = [n for n in tweetgen.__all__ if n != "__version__"]
    assert names == sorted(names)
    assert set(tweetgen.__all__) >= DOCUMENTED


@pytest.mark.parametrize("name", sorted(tweetgen.__all__))
def test_every_exported_name_resolves(name: str) -> None:
    assert getattr(tweetgen, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tweetgen.nope  # type: ignore[attr-defined]


def test_import_is_light() -> None:
    heavy = "('httpx', 'structlog', 'twitter_text', 'tenacity')"
    code = f"import sys, tweetgen; print(sorted(m for m in {heavy} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_error_tree_matches_the_design() -> None:
    assert issubclass(tweetgen.InputError, ValueError)
    assert issubclass(tweetgen.RequestTimeoutError, tweetgen.NetworkError)
    for name in (
        "AuthenticationError",
        "RateLimitError",
        "ModelNotFoundError",
        "BadRequestError",
        "ServerError",
    ):
        assert issubclass(getattr(tweetgen, name), tweetgen.APIError)
    assert all(
        issubclass(getattr(tweetgen, n), tweetgen.TweetGenError)
        for n in DOCUMENTED
        if n.endswith("Error")
    )
