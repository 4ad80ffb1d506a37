"""The sandbox's models listing: ``GET {prefix}/v1beta/models`` (paged) and ``GET
{prefix}/v1beta/models/MODEL``, in the REST shapes of Gemini's ``models.list`` and ``models.get``.

A listing is ``{"models": [Model...], "nextPageToken": "..."}`` (the token absent on the last page);
``pageSize`` defaults to 50 and is capped at 1000, as the REST reference says; a ``pageToken`` the
sandbox did not hand out is a 400 INVALID_ARGUMENT. Each Model has ``name`` (``models/...``),
``version``, ``displayName``, ``description``, ``inputTokenLimit``, ``outputTokenLimit``,
``supportedGenerationMethods``, ``temperature``, ``maxTemperature``, ``topP``, ``topK`` and
``thinking``. The models and their limits are the sandbox's own (late 2026's names): a listing to
test against, not a copy of Google's.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["MODELS", "answer_models"]

_GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]


def _model(
    name: str, display: str, limits: tuple[int, int], *, thinking: bool = True
) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "version": "001",
        "displayName": display,
        "description": f"{display}, served by the offline sandbox (placeholder text).",
        "inputTokenLimit": limits[0],
        "outputTokenLimit": limits[1],
        "supportedGenerationMethods": list(_GENERATE),
        "temperature": 1.0,
        "maxTemperature": 2.0,
        "topP": 0.95,
        "topK": 64,
        "thinking": thinking,
    }


#: the sandbox's models, in the order a listing returns them
MODELS: tuple[dict[str, Any], ...] = (
    _model("gemini-3.5-flash", "Gemini 3.5 Flash", (1_048_576, 65_536)),
    _model("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite", (1_048_576, 65_536)),
    _model("gemini-3.8-flash", "Gemini 3.8 Flash", (1_048_576, 65_536)),
    _model("gemini-3.5-pro", "Gemini 3.5 Pro", (1_048_576, 65_536)),
    _model("gemini-2.5-flash", "Gemini 2.5 Flash", (1_048_576, 65_536)),
    _model("gemini-flash-latest", "Gemini Flash Latest", (1_048_576, 65_536)),
    _model("gemini-flash-lite-latest", "Gemini Flash-Lite Latest", (1_048_576, 65_536)),
    _model("gemini-pro-latest", "Gemini Pro Latest", (1_048_576, 65_536)),
    {
        **_model("gemini-embedding-001", "Gemini Embedding 001", (2_048, 1), thinking=False),
        "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"],
    },
)

_DEFAULT_PAGE, _MAX_PAGE = 50, 1000
_LIST = re.compile(r"^/(?P<version>v1|v1beta)/models/?$")
_GET = re.compile(r"^/(?P<version>v1|v1beta)/models/(?P<model>[^/:]+)$")
_TOKEN = re.compile(r"^sandbox-page-(\d{1,6})$")


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _page(query: dict[str, list[str]]) -> tuple[int, int] | dict[str, Any]:
    """(offset, size) from ``pageToken`` and ``pageSize``, or the 400 body that refuses them."""
    size_text = (query.get("pageSize") or [""])[0]
    if size_text and not size_text.isdigit():
        return _error(400, "INVALID_ARGUMENT", f"Invalid value for pageSize: {size_text[:40]!r}")
    size = int(size_text) if size_text else 0
    size = min(size, _MAX_PAGE) if size > 0 else _DEFAULT_PAGE
    token = (query.get("pageToken") or [""])[0]
    if not token:
        return 0, size
    match = _TOKEN.match(token)
    if match is None or int(match.group(1)) > len(MODELS):
        return _error(400, "INVALID_ARGUMENT", "Invalid page token.")
    return int(match.group(1)), size


def answer_models(path: str, prefix: str) -> tuple[int, dict[str, Any]] | None:
    """The answer to ``GET path`` (its query string included) when it asks for the models (a page
    of the listing, or one model); ``None`` when the path is not a models path under ``prefix``."""
    parts = urlsplit(path)
    route = parts.path.rstrip("/") if parts.path != "/" else parts.path
    if prefix:
        if not route.startswith(prefix + "/"):
            return None
        route = route[len(prefix) :]
    if (one := _GET.match(route)) is not None:
        wanted = f"models/{one.group('model')}"
        found = next((m for m in MODELS if m["name"] == wanted), None)
        if found is None:
            message = f"{wanted} is not found for API version {one.group('version')}."
            return 404, _error(404, "NOT_FOUND", message)
        return 200, dict(found)
    if _LIST.match(route + "/") is None and _LIST.match(route) is None:
        return None
    page = _page(parse_qs(parts.query))
    if isinstance(page, dict):
        return 400, page
    offset, size = page
    listing: dict[str, Any] = {"models": [dict(m) for m in MODELS[offset : offset + size]]}
    if offset + size < len(MODELS):
        listing["nextPageToken"] = f"sandbox-page-{offset + size}"
    return 200, listing
