"""The public calls of a ``TweetGenerator`` and the scope of one call (trace, log context).

Every option is a named, typed, keyword-only parameter: a misspelt one fails at the caller's line
with Python's own ``TweetGenerator.generate() got an unexpected keyword argument 'jiter'`` (hence
the shared name: :mod:`tweetgen.generator`'s ``TweetGenerator``, with the drivers and plans,
extends this class). Each call builds one validated :class:`~tweetgen.request.TweetRequest`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from .request import NOT_A_THREAD, TweetRequest
from .results import Thread, Tweet
from .trace import CallContext, CallScope, CallTrace, Observer, new_request_id

if TYPE_CHECKING:
    from .generator import Plan
    from .prompts import TemplateRegistry
    from .providers.base import Provider

__all__ = ["TweetGenerator"]

T = TypeVar("T")


class TweetGenerator:
    """The public calls; ``tweetgen.generator.TweetGenerator`` adds the drivers and plans."""

    templates: TemplateRegistry
    observers: tuple[Observer, ...]
    _clock: Callable[[], float]

    if TYPE_CHECKING:

        @property
        def provider(self) -> Provider: ...

        def _drive(
            self,
            request: TweetRequest,
            plan: Callable[[TweetRequest, CallTrace], Plan[T]],
            context: CallContext | None = None,
        ) -> T: ...

        async def _adrive(
            self,
            request: TweetRequest,
            plan: Callable[[TweetRequest, CallTrace], Plan[T]],
            context: CallContext | None = None,
        ) -> T: ...

        def _tweet_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[Tweet]: ...
        def _variants_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[list[Tweet]]: ...
        def _thread_plan(self, request: TweetRequest, trace: CallTrace) -> Plan[Thread]: ...

    def prompt(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        variants: int = 1,
        thread: int = NOT_A_THREAD,
        numbering: bool = True,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> str:
        """The rendered prompt for a request (what ``--dry-run`` prints)."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            variants=variants,
            thread=thread,
            numbering=numbering,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return request.render(self.templates)

    def generate(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> Tweet:
        """One valid tweet; transport failures are retried, rule breakers regenerated."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return self._drive(request, self._tweet_plan)

    async def agenerate(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> Tweet:
        """The async twin of :meth:`generate`."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return await self._adrive(request, self._tweet_plan)

    def generate_request(
        self, request: TweetRequest, *, context: CallContext | None = None
    ) -> Tweet:
        """One valid tweet for a request validated already (a batch row), with its context."""
        return self._drive(request, self._tweet_plan, context)

    async def agenerate_request(
        self, request: TweetRequest, *, context: CallContext | None = None
    ) -> Tweet:
        """The async twin of :meth:`generate_request`."""
        return await self._adrive(request, self._tweet_plan, context)

    def generate_variants(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        n: int = 3,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> list[Tweet]:
        """Up to ``n`` different valid tweets from one call (``candidateCount``), best first."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            variants=n,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return self._drive(request, self._variants_plan)

    async def agenerate_variants(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 25,
        *,
        n: int = 3,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> list[Tweet]:
        """The async twin of :meth:`generate_variants`."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            variants=n,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return await self._adrive(request, self._variants_plan)

    def generate_thread(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 40,
        *,
        tweets: int = 5,
        numbering: bool = True,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> Thread:
        """A thread of ``tweets`` valid tweets (numbered ``1/5`` unless ``numbering=False``)."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            thread=tweets,
            numbering=numbering,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return self._drive(request, self._thread_plan)

    async def agenerate_thread(
        self,
        topic: str,
        tone: str = "professional",
        max_words: int = 40,
        *,
        tweets: int = 5,
        numbering: bool = True,
        template: str = "tweet",
        hashtags: str | Sequence[str] = "auto",
        emoji: bool | None = None,
        audience: str | None = None,
        call_to_action: str | None = None,
        language: str | None = None,
        link: str | None = None,
        banned_phrases: Sequence[str] = (),
        seed: int | None = None,
        temperature: float | None = None,
        extra: dict[str, str] | None = None,
    ) -> Thread:
        """The async twin of :meth:`generate_thread`."""
        request = TweetRequest(
            topic,
            tone,
            max_words,
            thread=tweets,
            numbering=numbering,
            template=template,
            hashtags=hashtags,
            emoji=emoji,
            audience=audience,
            call_to_action=call_to_action,
            language=language,
            link=link,
            banned_phrases=banned_phrases,
            seed=seed,
            temperature=temperature,
            extra={} if extra is None else extra,
        )
        return await self._adrive(request, self._thread_plan)

    def _scope(self, request: TweetRequest, call_context: CallContext | None = None) -> CallScope:
        """Bind the call's log context and trace; record how it ended for the observers."""
        provider = self.provider
        trace = CallTrace(
            request_id=new_request_id(),
            provider=provider.name,
            model=provider.model,
            inputs={"topic": request.topic, "tone": request.tone, "max_words": request.max_words},
            observers=self.observers,
            context=call_context or CallContext(),
        )
        return CallScope(trace, self._clock)

    def _finished(self, trace: CallTrace, value: T) -> T:
        """Stamp the call's attempts and wall-clock latency on what it returns."""
        latency_ms = round((self._clock() - trace.clock_start) * 1000, 2)
        attempts = len(trace.attempts)
        result: Any
        if isinstance(value, Thread):
            figures: dict[str, Any] = {"attempts": attempts, "latency_ms": latency_ms}
            result = replace(
                value, tweets=tuple(replace(t, **figures) for t in value.tweets), **figures
            )
            texts = result.texts
        elif isinstance(value, list):
            result = [_stamped(t, attempts, latency_ms) for t in value]
            texts = [t.text for t in result]
        else:
            result = _stamped(value, attempts, latency_ms)  # type: ignore[arg-type]
            texts = [result.text]
        trace.status = "ok"
        trace.text = "\n---\n".join(texts)
        return result  # type: ignore[no-any-return]


def _stamped(tweet: Tweet, attempts: int, latency_ms: float) -> Tweet:
    """``replace(tweet, attempts=, latency_ms=)``, 4x cheaper for a plain Tweet (no __post_init__,
    no slots: its fields are its ``__dict__``)."""
    if type(tweet) is not Tweet:
        return replace(tweet, attempts=attempts, latency_ms=latency_ms)
    stamped = object.__new__(Tweet)
    stamped.__dict__.update(tweet.__dict__, attempts=attempts, latency_ms=latency_ms)
    return stamped
