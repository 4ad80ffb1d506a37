"""The sandbox's Gemini dialect: ``generateContent`` bodies, answers and error bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .composer import (
    ECHO_EXAMPLE,
    NOTES_MARK,
    VOICE_MARK,
    answer_text,
    read_prompt,
    style_notes,
    voice_examples,
    voice_facts,
)
from .faults import ERROR_BODIES, Fault
from .quota import Quota, gemini_quota_error, gemini_quota_fault
from .thoughts import thinking_problem, thoughts_spent

__all__ = [
    "BAD_JSON",
    "CUT_JSON",
    "SHED_FLEX",
    "GeminiRoute",
    "config_error",
    "error_body",
    "success_body",
]

#: prompt markers (put one in a topic) that script an answer without a fault script: the first
#: structured answer is not JSON, or is cut mid-array (MAX_TOKENS); every flex request is shed
BAD_JSON = "sandbox:bad-json"
CUT_JSON = "sandbox:cut-json"
SHED_FLEX = "sandbox:shed-flex"
#: what tweetgen adds to a prompt it asks again (a regenerated answer is not broken again)
RETRY_MARK = "Your previous answer was rejected"
#: the sandbox's answer to a shed flex request (the real wording is not documented)
SHED_MESSAGE = (
    "The model is overloaded at the flex service tier. Please retry later or at the standard tier."
)


def error_body(
    status: int, message: str | None = None, *, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Gemini error body for ``status``."""
    name, default = ERROR_BODIES.get(status, ("UNKNOWN", f"HTTP {status}"))
    error: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    if details:
        error["details"] = details
    return {"error": error}


def _prompt(body: dict[str, Any]) -> str:
    try:
        return "".join(
            p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])
        )
    except (AttributeError, TypeError):
        return ""


def _json_items(config: dict[str, Any]) -> int:
    """How many strings the request's ``responseJsonSchema`` asks for (0: plain text)."""
    schema = config.get("responseJsonSchema")
    if config.get("responseMimeType") != "application/json" or not isinstance(schema, dict):
        return 0
    count = schema.get("minItems", schema.get("maxItems", 1))
    return count if isinstance(count, int) and 0 < count <= 50 else 1


def _answers(kind: str, prompt: str, seed: int | None, count: int, items: int) -> list[str]:
    """Each candidate's text: the composer's tweets, or (structured output) a JSON array of
    ``items`` strings: a thread's tweets, or that many variants."""
    if prompt.startswith(NOTES_MARK) and not items:  # tweetgen voice create's style notes
        return [style_notes(prompt)] * count
    facts = voice_facts(prompt, read_prompt(prompt))
    if not items:
        retry = RETRY_MARK in prompt
        if ECHO_EXAMPLE in prompt and not retry and (examples := voice_examples(prompt)):
            return [examples[0]] * count  # a copy of the voice's example, to be rejected
        shift = 1 if retry and VOICE_MARK in prompt else 0  # a rejected copy: another tweet
        return [answer_text(kind, facts, seed, i + shift) for i in range(count)]
    texts = []
    for i in range(count):
        if facts.thread:
            tweets = answer_text(kind, facts, seed, i).split("\n---\n")
        else:
            tweets = [answer_text(kind, facts, seed, i * items + j) for j in range(items)]
        texts.append(json.dumps(tweets, ensure_ascii=False))
    return _scripted_json(prompt, texts)


def _scripted_json(prompt: str, texts: list[str]) -> list[str]:
    """A first answer (no feedback in the prompt yet) broken as the prompt's marker asks:
    ``sandbox:bad-json`` (not JSON) or ``sandbox:cut-json`` (cut mid-array)."""
    if RETRY_MARK in prompt:
        return texts
    if BAD_JSON in prompt:
        return ["Here are your tweets: [" + t[1:40] for t in texts]
    if CUT_JSON in prompt:
        return [t[: max(2, len(t) // 2)] for t in texts]
    return texts


def limit_of(config: dict[str, Any]) -> int:
    """The request's ``maxOutputTokens`` (the API's own limit when unset)."""
    limit = config.get("maxOutputTokens")
    return limit if isinstance(limit, int) and limit > 0 else 65536


def success_body(body: dict[str, Any] | None, model: str, kind: str = "ok") -> dict[str, Any]:
    """A Gemini success body whose candidates the composer wrote from the request's prompt; a
    thinking model spends thought tokens (:mod:`tweetgen.sandbox.thoughts`), and an answer whose
    thoughts leave no room within ``maxOutputTokens`` is an all-thoughts ``MAX_TOKENS`` answer."""
    body = body or {}
    prompt = _prompt(body)
    config = body.get("generationConfig") or {}
    count = int(config.get("candidateCount") or 1)
    seed = config.get("seed") if isinstance(config.get("seed"), int) else None
    texts = _answers(kind, prompt, seed, count, _json_items(config))
    out_tokens = sum(len(text.split()) for text in texts) * 4 // 3
    in_tokens = max(1, len(prompt.split()) * 4 // 3)
    thoughts = thoughts_spent(model, config, f"{prompt}\x00{seed}")
    if "thinkingConfig" not in config:  # a client that says nothing of thinking (an older
        thoughts = min(thoughts, max(0, limit_of(config) - out_tokens - 1))  # one) keeps its text
    limit = limit_of(config)
    reason = "STOP"
    if thoughts and thoughts + out_tokens > limit:
        thoughts, out_tokens, reason = limit, 0, "MAX_TOKENS"
    elif CUT_JSON in prompt and RETRY_MARK not in prompt and _json_items(config):
        reason = "MAX_TOKENS"
    candidates: list[dict[str, Any]] = [
        {
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": reason,
            "index": i,
        }
        for i, text in enumerate(texts)
    ]
    if not out_tokens:
        candidates = [{"content": {"role": "model"}, "finishReason": reason, "index": 0}]
    if thoughts and (config.get("thinkingConfig") or {}).get("includeThoughts") is True:
        topic = read_prompt(prompt).topic
        summary = {"text": f"**Planning** a tweet about {topic}", "thought": True}
        for candidate in candidates:
            content = candidate["content"]
            content["parts"] = [summary, *content.get("parts", [])]
    usage: dict[str, Any] = {"promptTokenCount": in_tokens}
    if out_tokens:
        usage["candidatesTokenCount"] = out_tokens
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    usage["totalTokenCount"] = in_tokens + out_tokens + thoughts
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": f"sandbox-{abs(hash((prompt, seed))) % 10**12}",
    }


def config_error(body: dict[str, Any]) -> str | None:
    """Why the request's ``generationConfig`` is invalid, in Gemini's words; ``None`` if valid."""
    config = body.get("generationConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        return "Invalid value at 'generation_config': expected an object."
    count = config.get("candidateCount", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 8:
        return (
            "Invalid value at 'generation_config.candidate_count': must be an integer from 1 to 8."
        )
    return None


@dataclass(frozen=True)
class GeminiRoute:
    """How the sandbox answers one ``generateContent`` request, fault by fault."""

    model: str
    version: str

    def key(self, headers: Mapping[str, str]) -> str:
        return headers.get("x-goog-api-key", "")

    def invalid(self, body: object) -> tuple[int, dict[str, Any]] | None:
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
            return 400, error_body(400, "Invalid JSON payload received. 'contents' is required.")
        problem = config_error(body) or thinking_problem(self.model, body.get("generationConfig"))
        if problem:
            return 400, error_body(400, problem)
        if body.get("serviceTier") == "FLEX" and SHED_FLEX in _prompt(body):
            return 503, error_body(503, SHED_MESSAGE)
        return None

    def status(self, fault: Fault) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        if fault.quota is not None:  # 429day, 429tpm, 429spend, 429prepay: the real bodies
            return 429, gemini_quota_fault(fault.quota, self.model, fault.retry_delay), None
        message = None
        if fault.status == 404:
            message = ERROR_BODIES[404][1].format(model=self.model, version=self.version)
        details = []
        if fault.retry_delay:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": fault.retry_delay,
                }
            )
            message = f"You exceeded your current quota. Please retry in {fault.retry_delay}."
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        return fault.status, error_body(fault.status, message, details=details), headers

    def invalid_key(self) -> tuple[int, dict[str, Any]]:
        return 400, _invalid_key_body()

    def echo_key(self, key: str) -> tuple[int, dict[str, Any]]:
        return 400, error_body(400, f"API key not valid: {key}. Please pass a valid API key.")

    def refused(self, quota: Quota, delay: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """429 RESOURCE_EXHAUSTED for a spent project quota (no header: Gemini sends none)."""
        return 429, gemini_quota_error(quota, delay, self.model), {}

    def answer(self, body: dict[str, Any] | None, kind: str) -> dict[str, Any]:
        return success_body(body, self.model, kind)

    def answer_headers(self, body: dict[str, Any] | None) -> dict[str, str]:
        """The headers of a success answer: the tier that answered, as the API names it
        (``x-gemini-service-tier``). Sent once the server passes them on with the answer."""
        tier = (body or {}).get("serviceTier")
        return {"x-gemini-service-tier": str(tier).lower() if tier else "standard"}

    def blocked(self) -> dict[str, Any]:
        return {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 9},
        }

    def max_tokens(self) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}


def _invalid_key_body() -> dict[str, Any]:
    return error_body(
        400,
        "API key not valid. Please pass a valid API key.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )
