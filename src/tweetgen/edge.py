"""The edge of a module-level call: its client options resolved once, then reused.

``generate_tweet`` and friends build a :class:`ClientOptions` from their named arguments. The
settings, the :class:`~tweetgen.retry.RetryPolicy` and the generator it describes are cached per
distinct options, sleep and environment (the variables the settings read and the ``.env`` file's
identity), so a repeated call pays a dictionary lookup and a ``stat`` instead of a resolution, and
an edited environment or ``.env`` still takes effect at the next call. Calls with the same options
share one circuit breaker registry and one retry budget, sync and async alike.
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TypeAlias

from .backoff import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_DELAY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    RetryPolicy,
)
from .config import ENVIRONMENT_VARIABLES, Settings, load_settings
from .generator import DEFAULT_REGENERATIONS, TweetGenerator, log_breaker_change
from .providers.base import Provider
from .resilience import BreakerRegistry, RetryBudget

__all__ = [
    "ClientOptions",
    "ProviderSpec",
    "borrowed",
    "close_cached",
    "environment_key",
    "one_async",
    "policy_for",
]

#: a provider name (``"gemini"``), a chain (``"gemini,openai"`` or ``["gemini", "openai"]``), or
#: provider objects of the caller's own
ProviderSpec: TypeAlias = str | Provider | Sequence[str] | Sequence[Provider] | None
Sleep: TypeAlias = Callable[[float], None]
AsyncSleep: TypeAlias = Callable[[float], Awaitable[None]]
#: a breaker registry and a retry budget shared by the calls of one set of options
Guards: TypeAlias = tuple[BreakerRegistry, RetryBudget]


_ENCODED = tuple(os.fsencode(var) for var in ENVIRONMENT_VARIABLES)
_settings: dict[tuple[object, ...], Settings] = {}


def _variables() -> tuple[object, ...]:
    """The values of the variables the settings read, as this process sees them now."""
    data = getattr(os.environ, "_data", None)
    if os.name == "posix" and isinstance(data, dict):
        # os.environ's own bytes store (kept in step by every assignment to os.environ): 20x
        # cheaper than os.environ.get, which decodes each value (3-5 us a variable, 17 variables)
        return tuple(map(data.get, _ENCODED))
    return tuple(map(os.environ.get, ENVIRONMENT_VARIABLES))


def _file_identity(path: str) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from another (device, inode, mtime, size), or ``None``."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def environment_key(dotenv_path: str = ".env") -> tuple[object, ...]:
    """Everything :func:`~tweetgen.config.load_settings` reads besides its arguments: the variables
    it knows, and the identity of the ``.env`` file (in the working directory, as it reads it)."""
    return _variables(), _file_identity(dotenv_path)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a module-level call reaches the model: settings, provider chain and retry policy.

    Hashable when the provider is a name or a chain of names: then it is the cache key.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    api_key: str | None = None
    base_url: str | None = None
    api_version: str | None = None
    model: str | None = None
    timeout: float | None = None
    provider: ProviderSpec = None
    engine: str = "custom"
    regenerations: int = DEFAULT_REGENERATIONS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    jitter: str = "none"
    deadline: float | None = None
    retry_rate_limits: bool = False
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    shared: str | None = field(default=None, repr=False)  # a URL may hold a password
    #: how much the model may think (off, low, medium, high, auto; None: TWEETGEN_THINKING, else
    #: off)
    thinking: str | None = None
    #: standard, flex or priority (None: TWEETGEN_SERVICE_TIER, else standard)
    service_tier: str | None = None
    #: a shed flex call is asked again at standard
    flex_fallback: bool = True

    def __post_init__(self) -> None:
        provider = self.provider
        if isinstance(provider, list | tuple) and all(isinstance(p, str) for p in provider):
            object.__setattr__(self, "provider", ",".join(provider))

    @property
    def cacheable(self) -> bool:
        """Whether calls with these options share a generator (not around the caller's objects)."""
        return self.provider is None or isinstance(self.provider, str)

    def settings(self) -> Settings:
        """The settings: these arguments over the environment and ``.env``, resolved again only
        when one of them, a variable the settings read or the ``.env`` file changes."""
        given = (
            self.api_key,
            self.base_url,
            self.api_version,
            self.model,
            self.timeout,
            self.shared,
            self.thinking,
            self.service_tier,
        )
        try:
            key = (given, environment_key())
            settings = _settings.get(key)
        except TypeError:  # an unhashable value: load_settings says what is wrong with it
            key, settings = None, None
        if settings is None:
            settings = load_settings(
                api_key=self.api_key,
                base_url=self.base_url,
                api_version=self.api_version,
                model=self.model,
                timeout=self.timeout,
                shared=self.shared,
                thinking=self.thinking,
                service_tier=self.service_tier,
            )
            if key is not None:
                if (
                    len(_settings) >= 64
                ):  # bounded, for a process that keeps changing its environment
                    _settings.clear()
                _settings[key] = settings
        return settings

    def policy(self) -> RetryPolicy:
        """The retry policy, built once per distinct retry arguments."""
        try:
            return policy_for(*self._retry_arguments())
        except TypeError:  # an unhashable value: the policy itself says what is wrong with it
            return policy_for.__wrapped__(*self._retry_arguments())

    def _retry_arguments(self) -> tuple[int, float, float, str, float | None, bool, float]:
        return (
            self.max_retries,
            self.base_delay,
            self.max_delay,
            self.jitter,
            self.deadline,
            self.retry_rate_limits,
            self.max_retry_after,
        )

    def generator(
        self,
        guards: Guards | None = None,
        *,
        sleep: Sleep | None = None,
        async_sleep: AsyncSleep | None = None,
    ) -> TweetGenerator:
        """A new generator for these options (``guards``: a shared breaker registry and budget)."""
        breakers, budget = guards if guards is not None else (True, True)
        return TweetGenerator(
            provider=self.provider,  # type: ignore[arg-type]  # a chain of names is one str by now
            settings=self.settings(),
            policy=self.policy(),
            engine=self.engine,
            regenerations=self.regenerations,
            circuit_breaker=breakers,
            retry_budget=budget,
            sleep=sleep,
            async_sleep=async_sleep,
            flex_fallback=None if self.flex_fallback else False,  # on: TWEETGEN_FLEX_FALLBACK says
        )


@functools.lru_cache(maxsize=64)
def policy_for(
    max_retries: int,
    base_delay: float,
    max_delay: float,
    jitter: str,
    deadline: float | None,
    retry_rate_limits: bool,
    max_retry_after: float,
) -> RetryPolicy:
    """The policy of the seed's ``max_retries`` and the retry options (cached: it is frozen)."""
    return RetryPolicy.from_retries(
        max_retries,
        base_delay=base_delay,
        max_delay=max_delay,
        jitter=jitter,
        deadline=deadline,
        retry_rate_limits=retry_rate_limits,
        max_retry_after=max_retry_after,
    )


_cache: dict[tuple[object, ...], TweetGenerator] = {}
_guards: dict[tuple[object, ...], Guards] = {}
_cache_lock = threading.Lock()


def close_cached() -> None:
    """Close the generators the module-level calls keep (run at exit; call it to release sockets
    sooner)."""
    with _cache_lock:
        generators = list(_cache.values())
        _cache.clear()
        _guards.clear()
    for generator in generators:
        generator.close()


atexit.register(close_cached)


def _key(options: ClientOptions, sleep: object) -> tuple[object, ...] | None:
    """The cache key of a call's options, ``None`` when they cannot be shared or hashed."""
    if not options.cacheable:
        return None
    key = (options, sleep, environment_key())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _shared(options: ClientOptions) -> Guards:
    """One breaker registry and retry budget per options and settings, sync and async alike; with
    a shared state (``shared=`` or ``TWEETGEN_SHARED``), the fleet's (:mod:`tweetgen.shared`)."""
    settings, policy = options.settings(), options.policy()
    key = (options, settings, settings.shared)
    with _cache_lock:
        guards = _guards.get(key)
        if guards is None:
            breakers = BreakerRegistry(on_state_change=log_breaker_change)
            guards = (breakers, RetryBudget.for_policy(policy))
            if settings.shared:
                guards = _fleet(settings.shared, guards)
            _guards[key] = guards
    return guards


def _fleet(url: str, guards: Guards) -> Guards:
    """``guards`` on the fleet at ``url``."""
    from .shared import fleet
    from .sharedguards import SharedBreakerRegistry, SharedBudget

    breakers, budget = guards
    shared = fleet(url)
    registry = SharedBreakerRegistry(shared, on_state_change=breakers._on_state_change)
    return registry, SharedBudget.like(budget, shared)


def borrowed(options: ClientOptions, sleep: Sleep | None) -> AbstractContextManager[TweetGenerator]:
    """The generator for these options (``with``): cached (one HTTP client reused), or a one-off
    around the caller's own provider objects, closed after the call. No generator-based context
    manager: this runs on every module-level call."""
    if not options.cacheable:
        return options.generator(sleep=sleep)
    key = (options, sleep, environment_key())
    try:
        cached = _cache.get(key)  # hashes the key once: _key would hash it twice
    except TypeError:  # an unhashable option: not shared
        return options.generator(sleep=sleep)
    if cached is not None:
        return nullcontext(cached)
    built = options.generator(_shared(options), sleep=sleep)
    with _cache_lock:
        generator = _cache.setdefault(key, built)
    if generator is not built:  # another thread cached its own first
        built.close()
    return nullcontext(generator)


@asynccontextmanager
async def one_async(
    options: ClientOptions, sleep: AsyncSleep | None
) -> AsyncIterator[TweetGenerator]:
    """A generator for one async call (a fresh async client: an event loop owns its connections),
    sharing the breaker and budget of its options."""
    guards = _shared(options) if _key(options, None) is not None else None
    generator = options.generator(guards, async_sleep=sleep)
    try:
        yield generator
    finally:
        await generator.aclose()
