"""The variant and thread plans of a :class:`~tweetgen.generator.TweetGenerator`: I/O-free
generators that yield the requests to send and receive their results.

With structured output (:mod:`tweetgen.structured`, every provider of the chain taking a JSON
schema) a variant set is one candidate holding a JSON array of the variants still wanted, instead
of ``candidateCount`` candidates, and a thread is a JSON array of its tweets, instead of text split
on ``---`` lines. An answer that is not such an array is rejected and asked again, with its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import TweetValidationError
from .results import Thread, Tweet
from .structured import parse_items
from .tweets import TweetCheck, check_tweet, number_thread, split_thread, thread_counters
from .verdicts import no_secret, no_valid

if TYPE_CHECKING:
    from .generator import Plan, TweetGenerator
    from .request import TweetRequest
    from .trace import CallTrace

__all__ = ["thread_plan", "variants_plan"]


def variants_plan(
    gen: TweetGenerator, request: TweetRequest, trace: CallTrace
) -> Plan[list[Tweet]]:
    """``request.variants`` different valid tweets, from as few calls as the rules allow."""
    kept: dict[str, Tweet] = {}
    # this round's best invalid candidate (or the JSON's fault): its reasons go back
    feedback: tuple[str, ...] = ()
    last_rejected: TweetCheck | None = None
    last_reasons: tuple[str, ...] = ()
    for round_ in range(gen.regenerations + 1):
        want = request.variants - len(kept)
        if gen.structured:
            result = yield gen._ask(request, feedback, 1, items=want)
            texts, why = parse_items(result.text, want)
        else:
            result = yield gen._ask(request, feedback, want)
            texts, why = list(result.texts), None
        checks = gen._checks(request, texts)
        for check in (c for c in checks if c.valid):
            key = " ".join(check.text.casefold().split())
            kept.setdefault(key, gen._tweet(request, trace, check, result, round_))
        rejected = next((c for c in checks if not c.valid), None)
        feedback = (why,) if why else rejected.reasons if rejected else ()
        if len(kept) >= request.variants:
            break
        if feedback:
            last_rejected, last_reasons = rejected, feedback
            gen._rejected(trace, feedback, rejected, round_)
    if not kept:
        if last_rejected is None and last_reasons:
            raise _no_thread_or_set("candidate", gen.regenerations, list(last_reasons), None)
        raise no_valid(last_rejected, gen.regenerations)
    ranked = sorted(kept.values(), key=lambda t: abs(t.words - request.max_words))
    return ranked[: request.variants]


def thread_plan(gen: TweetGenerator, request: TweetRequest, trace: CallTrace) -> Plan[Thread]:
    """The whole thread from one call, numbered ``1/5`` unless ``numbering`` is off.

    The prompt and the check agree on every tweet's words: the model is asked for ``max_words``
    (less one when a link is appended) and told not to number the tweets; the appended counter
    counts in the 280 characters, as X counts it, not in ``max_words``, as a reader reads it (a
    page number). So a model that writes the words it was asked for passes at any ``max_words``.
    """
    reasons: list[str] = []
    worst: TweetCheck | None = None
    for round_ in range(gen.regenerations + 1):
        why = None
        if gen.structured:
            result = yield gen._ask(request, reasons, items=request.thread)
            texts, why = parse_items(result.text, request.thread)
            parts = [request.finish(p) for text in texts for p in split_thread(text)]
        else:
            result = yield gen._ask(request, reasons)
            parts = [request.finish(p) for p in split_thread(result.text)]
        counters = [""] * len(parts)
        if request.numbering and len(parts) == request.thread:
            parts, counters = number_thread(parts), thread_counters(len(parts))
        rules = request.rules()
        checks = [
            no_secret(check_tweet(p, rules, counter=c))
            for p, c in zip(parts, counters, strict=True)
        ]
        if request.voice_spec is not None:  # no tweet of the thread copies one of its posts
            from .voicespec import voice_checks

            checks = voice_checks(request.voice_spec, checks)
        reasons = [f"tweet {i}: {r}" for i, c in enumerate(checks, 1) for r in c.reasons]
        if why:
            reasons.insert(0, why)
        elif len(parts) != request.thread:
            reasons.insert(0, f"that thread had {len(parts)} tweets; it needs {request.thread}")
        if not reasons:
            tweets = tuple(gen._tweet(request, trace, c, result, round_) for c in checks)
            return Thread(tweets, result.provider, result.model, 0, 0.0, trace.request_id, round_)
        worst = next((c for c in checks if not c.valid), checks[0] if checks else None)
        gen._rejected(trace, reasons, worst, round_)
    raise _no_thread_or_set("thread", gen.regenerations, reasons, worst)


def _no_thread_or_set(
    what: str, regenerations: int, reasons: list[str], worst: TweetCheck | None
) -> TweetValidationError:
    return TweetValidationError(
        f"no {what} passed the tweet rules after {regenerations} regeneration(s): "
        f"{'; '.join(reasons)}",
        best=worst.text if worst else None,
        reasons=tuple(reasons),
    )
