"""One answer of a Gemini batch job judged as a ``generateContent`` answer is: parsed by the
provider, priced at the batch tier, cleaned and checked by the tweet rules the generator applies
(:mod:`tweetgen.tweets`; a tweet holding a configured key never passes); and the store's record of
one that passed."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import TweetGenError
from .logs import contains_secret
from .providers.base import GenerationResult
from .providers.gemini import GeminiProvider
from .storerecord import CallRecord
from .trace import AttemptTrace, CallContext, CallTrace, new_request_id
from .tweets import TweetCheck, check_tweet, clean_tweet, rank_candidates

__all__ = ["BATCH_TIER", "Answer", "batch_cost", "best_check", "judge"]

#: the service tier a batch job's answers are stored with
BATCH_TIER = "batch"


def batch_cost(provider: GeminiProvider, result: GenerationResult) -> float | None:
    """The answer's cost at the batch tier (None: price unknown, or no price list installed)."""
    try:
        from .pricing import cost_usd
    except ImportError:  # pragma: no cover - the price list lands with issue 15's cost part
        return None
    return cost_usd(
        provider.model, result.usage, tier=BATCH_TIER, response_model=result.model_version
    )


@dataclass(frozen=True)
class Answer:
    """An answer that passed the checks: the parsed result and the tweet's text."""

    provider: GeminiProvider
    request: Any
    result: GenerationResult
    text: str

    def record(self, context: CallContext, submitted: float, latency_ms: float) -> CallRecord:
        """The store's record: one attempt at the batch tier, its latency the job's (submission
        to collection), started when the job was submitted."""
        request = self.request
        trace = CallTrace(
            request_id=new_request_id(),
            provider=self.provider.name,
            model=self.provider.model,
            inputs={"topic": request.topic, "tone": request.tone, "max_words": request.max_words},
            started_at=submitted,
            context=context,
        )
        attempt = AttemptTrace(number=1, started_at=submitted)
        attempt.record(self.result, latency_ms)
        trace.attempts.append(attempt)
        trace.status, trace.text, trace.latency_ms = "ok", self.text, latency_ms
        return CallRecord.of(trace)


def judge(provider: GeminiProvider, prepared: Any, entry: dict[str, Any]) -> Any:
    """The :class:`Answer` of a row, or why there is none: ``"errors"`` (an error, a blocked or
    empty answer, anything unparsable) or ``"rejected"`` (the tweet checks said no)."""
    response = entry.get("response")
    if not isinstance(response, dict):
        return "errors"
    try:
        result = provider.parse_response(json.dumps(response).encode(), status_code=200)
    except TweetGenError:
        return "errors"
    cost = batch_cost(provider, result)
    result = dataclasses.replace(result, service_tier=BATCH_TIER, cost_usd=cost)
    check = best_check(prepared.request, result.texts)
    if not check.valid or contains_secret(check.text):
        return "rejected"
    return Answer(provider, prepared.request, result, check.text)


def best_check(request: Any, texts: Sequence[str]) -> TweetCheck:
    """The best candidate as the generator ranks them: cleaned, finished, checked against the
    request's rules, valid first and closest to its words next."""
    rules = request.rules()
    checks = [check_tweet(request.finish(clean_tweet(text)), rules) for text in texts]
    return rank_candidates(checks, target_words=request.max_words)[0]
