"""The sandbox's Gemini dialect: ``generateContent`` bodies, answers and error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .composer import answer_text, read_prompt
from .faults import ERROR_BODIES, Fault
from .quota import Quota, gemini_quota_error

__all__ = ["GeminiRoute", "config_error", "error_body", "success_body"]


def error_body(
    status: int, message: str | None = None, *, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Gemini error body for ``status``."""
    name, default = ERROR_BODIES.get(status, ("UNKNOWN", f"HTTP {status}"))
    error: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    if details:
        error["details"] = details
    return {"error": error}


def success_body(body: dict[str, Any] | None, model: str, kind: str = "ok") -> dict[str, Any]:
    """A Gemini success body whose candidates the composer wrote from the request's prompt."""
    body = body or {}
    try:
        prompt = "".join(
            p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", [])
        )
    except (AttributeError, TypeError):
        prompt = ""
    config = body.get("generationConfig") or {}
    count = int(config.get("candidateCount") or 1)
    seed = config.get("seed") if isinstance(config.get("seed"), int) else None
    facts = read_prompt(prompt)
    texts = [answer_text(kind, facts, seed, i) for i in range(count)]
    candidates = [
        {
            "content": {"role": "model", "parts": [{"text": text}]},
            "finishReason": "STOP",
            "index": i,
        }
        for i, text in enumerate(texts)
    ]
    out_tokens = sum(len(text.split()) for text in texts) * 4 // 3
    in_tokens = max(1, len(prompt.split()) * 4 // 3)
    return {
        "candidates": candidates,
        "usageMetadata": {
            "promptTokenCount": in_tokens,
            "candidatesTokenCount": out_tokens,
            "totalTokenCount": in_tokens + out_tokens,
        },
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
        problem = config_error(body)
        return (400, error_body(400, problem)) if problem else None

    def status(self, fault: Fault) -> tuple[int, dict[str, Any], dict[str, str] | None]:
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
