"""The sandbox's OpenAI dialect: ``POST /v1/chat/completions`` bodies, answers and error bodies."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .composer import answer_text, read_prompt
from .faults import Fault
from .quota import Quota, chat_quota_error, chat_quota_fault

__all__ = ["CHAT_ERRORS", "ChatRoute", "chat_error_body", "chat_success_body"]

#: status -> (type, code, message): the bodies OpenAI sends (``{model}`` is filled in).
CHAT_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    408: ("invalid_request_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict: another request is using this resource."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit 3.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "Gateway timeout."),
}
MAX_CHOICES = 128


def chat_error_body(
    status: int, message: str | None = None, *, model: str = "sandbox"
) -> dict[str, Any]:
    """An OpenAI error body for ``status``."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    kind, code, default = CHAT_ERRORS.get(status, (default_type, None, f"HTTP {status}"))
    text = message or default.replace("{model}", model)
    return {"error": {"message": text, "type": kind, "param": None, "code": code}}


def _user_prompt(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return content if isinstance(content, str) else ""


def _completion(
    model: str, choices: list[dict[str, Any]], prompt: str, reasoning: int = 0
) -> dict[str, Any]:
    words = sum(len(str(c["message"]["content"]).split()) for c in choices)
    prompt_tokens = max(1, len(prompt.split()) * 4 // 3)
    completion_tokens = words * 4 // 3 + reasoning
    return {
        "id": "chatcmpl-sandbox-"
        + hashlib.sha256(f"{prompt}{time.time_ns()}".encode()).hexdigest()[:20],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
        "system_fingerprint": "fp_sandbox",
    }


def _choice(index: int, text: str, finish: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text, "refusal": None}
    return {"index": index, "message": message, "logprobs": None, "finish_reason": finish}


def chat_success_body(body: Mapping[str, Any], kind: str = "ok") -> dict[str, Any]:
    """An OpenAI success body whose choices the composer wrote from the last user message."""
    prompt = _user_prompt(body.get("messages") or [])
    seed = body.get("seed") if isinstance(body.get("seed"), int) else None
    facts = read_prompt(prompt)
    count = int(body.get("n") or 1)
    choices = [_choice(i, answer_text(kind, facts, seed, i), "stop") for i in range(count)]
    return _completion(str(body.get("model")), choices, prompt)


def _request_error(body: object) -> str | None:
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) for m in messages)
    ):
        return "'messages' must be a non-empty array of objects."
    count = body.get("n", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CHOICES:
        return f"Invalid 'n': must be an integer from 1 to {MAX_CHOICES}."
    return None


@dataclass(frozen=True)
class ChatRoute:
    """How the sandbox answers one ``chat/completions`` request, fault by fault."""

    model: str = "sandbox"

    @classmethod
    def for_body(cls, body: object) -> ChatRoute:
        """The route for a request body (its ``model``, when it names one)."""
        model = body.get("model") if isinstance(body, dict) else None
        return cls(model) if isinstance(model, str) and model else cls()

    def key(self, headers: Mapping[str, str]) -> str:
        """The bearer token the client sent, or ``""``."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""

    def invalid(self, body: object) -> tuple[int, dict[str, Any]] | None:
        """A 400 answer when the body is not a valid chat request."""
        problem = _request_error(body)
        return (400, chat_error_body(400, problem)) if problem else None

    def status(self, fault: Fault) -> tuple[int, dict[str, Any], dict[str, str] | None]:
        """A scripted error status (a ``429:26s`` delay as ``retry-after`` / ``retry-after-ms``)."""
        if fault.quota is not None:
            body, quota_headers = chat_quota_fault(fault.quota, self.model)
            return 429, body, quota_headers
        message = None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
        if fault.retry_delay:
            seconds = float(fault.retry_delay.rstrip("s"))
            headers = {
                "Retry-After": str(math.ceil(seconds)),
                "retry-after-ms": str(round(seconds * 1000)),
            }
            message = (
                f"Rate limit reached for {self.model}. Please try again in {fault.retry_delay}."
            )
        return fault.status, chat_error_body(fault.status, message, model=self.model), headers

    def invalid_key(self) -> tuple[int, dict[str, Any]]:
        """OpenAI's 401 for a wrong key."""
        return 401, chat_error_body(401)

    def echo_key(self, key: str) -> tuple[int, dict[str, Any]]:
        """A 401 that repeats the key (for redaction tests)."""
        return 401, chat_error_body(401, f"Incorrect API key provided: {key}.")

    def refused(self, quota: Quota, delay: float) -> tuple[int, dict[str, Any], dict[str, str]]:
        """429 ``rate_limit_exceeded`` for a spent project quota, with ``retry-after(-ms)``."""
        body, headers = chat_quota_error(quota, delay, self.model)
        return 429, body, headers

    def answer(self, body: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
        """A normal or rule-breaking answer."""
        return chat_success_body(body or {"model": self.model}, kind)

    def blocked(self) -> dict[str, Any]:
        """No text, ``finish_reason`` ``content_filter``."""
        return _completion(self.model, [_choice(0, "", "content_filter")], "")

    def max_tokens(self) -> dict[str, Any]:
        """No text, ``finish_reason`` ``length``, the limit spent on reasoning."""
        return _completion(self.model, [_choice(0, "", "length")], "", reasoning=1024)
