"""The public calls of a ``TweetGenerator``: named options in, a validated request out.

Every option of a tweet is a named, typed, keyword-only parameter, so a misspelt one fails at the
caller's line with Python's own ``unexpected keyword argument``. Each call builds one validated
:class:`~tweetgen.request.TweetRequest` (the frozen options object) and drives a plan with it: the
drivers and the plans live in :mod:`tweetgen.generator`, whose ``TweetGenerator`` extends this
class. The two share the name so that Python's own error names the public class:
``TweetGenerator.generate() got an unexpected keyword argument 'jiter'``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from .request import NOT_A_THREAD, TweetRequest
from .results import Thread, Tweet

if TYPE_CHECKING:
    from .generator import Plan
    from .prompts import TemplateRegistry
    from .trace import CallContext, CallTrace

__all__ = ["TweetGenerator"]

T = TypeVar("T")


class TweetGenerator:
    """The public calls; ``tweetgen.generator.TweetGenerator`` adds the drivers and plans."""

    templates: TemplateRegistry

    if TYPE_CHECKING:

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
