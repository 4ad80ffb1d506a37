"""Providers from settings: ``gemini``, ``openai``, ``sandbox``, ``auto``, or a chain of them."""

from __future__ import annotations

from typing import Any

from ..config import DEFAULT_OPENAI_BASE_URL, Settings, provider_chain
from ..errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    EmptyResponseError,
    InvalidResponseError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    ServerError,
)
from .base import Provider
from .gemini import GeminiProvider
from .openai import OpenAIProvider

__all__ = [
    "FALLBACK_ERRORS",
    "build_provider",
    "build_providers",
    "falls_back",
    "resolve_provider",
    "resolve_providers",
]

NAMES = ("gemini", "openai", "sandbox")
#: errors after which a fallback chain moves to its next provider (retries, if any, are spent): the
#: provider is down, overloaded, out of quota, misconfigured or missing the model. Not: a malformed
#: request, a blocked prompt (never routed around), or the caller's own input.
FALLBACK_ERRORS: tuple[type[Exception], ...] = (
    ServerError,
    NetworkError,
    InvalidResponseError,
    CircuitOpenError,
    RateLimitError,
    AuthenticationError,
    ModelNotFoundError,
    EmptyResponseError,
)


def falls_back(error: BaseException) -> bool:
    """Whether a chain should try its next provider after this error."""
    return isinstance(error, FALLBACK_ERRORS)


def resolve_provider(
    settings: Settings, choice: str | None = None, *, offline: bool = False
) -> str:
    """One provider name; ``auto``: Gemini with a key, else the sandbox if ``offline`` (the CLI)."""
    choice = choice or settings.provider
    if choice == "auto":
        if settings.api_key or not offline:
            choice = "gemini"  # the library never answers with canned text because a key is missing
        else:
            return "sandbox"
    if choice in (None, "gemini") and not settings.api_key:
        raise ConfigurationError(
            "no Gemini API key configured: set GEMINI_API_KEY (or GOOGLE_API_KEY) in the "
            "environment or in a .env file, or choose the offline sandbox as the provider "
            "(TWEETGEN_PROVIDER=sandbox), whose tweets are placeholder text"
        )
    if (
        choice == "openai"
        and not settings.openai_api_key
        and settings.openai_base_url == DEFAULT_OPENAI_BASE_URL
    ):
        raise ConfigurationError(
            "no OpenAI API key configured: set OPENAI_API_KEY, or point OPENAI_BASE_URL at a local "
            "OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp) that needs none"
        )
    if choice is not None and choice not in NAMES:
        raise ConfigurationError(
            f"unknown provider {choice!r}; choose auto, {', '.join(NAMES)} or a chain like "
            "gemini,openai",
            setting="provider",
        )
    return choice or "gemini"


def resolve_providers(
    settings: Settings, spec: str | None = None, *, offline: bool = False
) -> list[str]:
    """The names of a provider spec, in fallback order (``auto`` only on its own)."""
    names = provider_chain(spec or settings.provider or "") or [""]
    if len(names) > 1 and "auto" in names:
        raise ConfigurationError(
            f"the provider chain {spec!r} includes auto, which cannot be part of a fallback chain; "
            "name the providers, e.g. gemini,openai"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"the provider chain {spec!r} names a provider twice")
    return [resolve_provider(settings, name or None, offline=offline) for name in names]


def build_provider(settings: Settings, choice: str | None = None, **transports: Any) -> Provider:
    """The provider one name stands for (the sandbox is started on first use)."""
    name = resolve_provider(settings, choice)
    if name == "openai":
        key = settings.openai_api_key.reveal() if settings.openai_api_key else None
        return OpenAIProvider(
            api_key=key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            max_response_bytes=settings.max_response_bytes,
            **transports,
        )
    if name == "sandbox":
        from ..sandbox import default_sandbox

        url, secret = default_sandbox().url, "sandbox"
    else:
        assert settings.api_key is not None
        url, secret = settings.base_url, settings.api_key.reveal()
    return GeminiProvider(
        api_key=secret,
        model=settings.model,
        base_url=url,
        api_version=settings.api_version,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        max_response_bytes=settings.max_response_bytes,
        name=name,
        secret_key=name != "sandbox",
        **transports,
    )


def build_providers(
    settings: Settings, spec: str | None = None, **transports: Any
) -> list[Provider]:
    """The providers of a spec such as ``gemini,openai``, in fallback order."""
    return [
        build_provider(settings, name, **transports) for name in resolve_providers(settings, spec)
    ]
