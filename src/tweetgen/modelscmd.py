"""``tweetgen models``: the models the key can use, with their token limits (issue 15, part 7).

``GET {GEMINI_BASE_URL}/{TWEETGEN_API_VERSION}/models`` with the key in ``x-goog-api-key``, page by
page (``pageSize``, ``pageToken`` from the answer's ``nextPageToken``); without a key, the offline
sandbox's listing (and a line on stderr saying so). A table (model, display name, input and output
token limits, whether it serves ``generateContent``, the other methods) or ``--json``.

Bounded: at most :data:`MAX_PAGES` pages and :data:`MAX_MODELS` models; the whole listing within
``--timeout`` (else ``TWEETGEN_TIMEOUT``, else 30 s) by the wall clock; every answer at most
``TWEETGEN_MAX_RESPONSE_BYTES`` once decoded (read with the providers' body reader). Text from the
server is cut and stripped of control characters before it reaches a terminal.

Errors: a 400 API_KEY_INVALID, 401 or 403 is an authentication error, other answers the error
tree's (:mod:`tweetgen.providers.gemini_errors`), a 404 names the URL settings; no traceback, exit 1
(2 for a bad setting); the key is never printed (it travels in a header only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from .errors import (
    BadRequestError,
    InvalidResponseError,
    NetworkError,
    RequestTimeoutError,
    ResponseTooLargeError,
)
from .exitcodes import EXIT_OK

__all__ = ["MAX_MODELS", "MAX_PAGES", "ModelInfo", "list_models", "run"]

#: the most pages one listing reads (a server that always answers a next page stops here)
MAX_PAGES = 50
#: the most models kept
MAX_MODELS = 5000
PAGE_SIZE = 1000
_TEXT = 120  # the longest name or display name shown


@dataclass(frozen=True)
class ModelInfo:
    """One model of the listing, as shown."""

    name: str
    display_name: str
    input_token_limit: int | None
    output_token_limit: int | None
    methods: tuple[str, ...]
    thinking: bool | None

    @property
    def generates(self) -> bool:
        """Whether tweetgen can use it (it serves ``generateContent``)."""
        return "generateContent" in self.methods


def _text(value: object, limit: int = _TEXT) -> str:
    """Server text made safe to print: no control characters, cut to ``limit``."""
    if not isinstance(value, str):
        return ""
    clean = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in value[: limit * 2])
    return clean[:limit].strip()


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _model(entry: object) -> ModelInfo | None:
    if not isinstance(entry, dict) or not _text(entry.get("name")):
        return None
    methods = entry.get("supportedGenerationMethods")
    listed = [_text(m, 40) for m in methods[:20]] if isinstance(methods, list) else []
    thinking = entry.get("thinking")
    return ModelInfo(
        name=_text(entry.get("name")).removeprefix("models/"),
        display_name=_text(entry.get("displayName")),
        input_token_limit=_count(entry.get("inputTokenLimit")),
        output_token_limit=_count(entry.get("outputTokenLimit")),
        methods=tuple(m for m in listed if m),
        thinking=thinking if isinstance(thinking, bool) else None,
    )


class _Listing:
    """One listing's requests, on one client, within one deadline."""

    def __init__(self, base: str, version: str, key: str, timeout: float, limit: int) -> None:
        self.url = f"{base.rstrip('/')}/{version}/models"
        self.version, self.key, self.limit = version, key, limit
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestTimeoutError(f"listing the models took longer than {self.timeout:g}s")
        return left

    def _check(self) -> None:
        self._left()

    def page(self, client: httpx.Client, token: str | None) -> dict[str, Any]:
        from .providers._body import TooLargeError, decoded, read
        from .providers.gemini_errors import error_from_response

        params = {"pageSize": str(PAGE_SIZE), **({"pageToken": token} if token else {})}
        headers = {"x-goog-api-key": self.key, "accept-encoding": "gzip, deflate"}
        request = client.build_request("GET", self.url, params=params, headers=headers)
        request.extensions["timeout"] = httpx.Timeout(self._left()).as_dict()
        try:
            response = client.send(request, stream=True)
            try:
                content = read(response, self._check, self.limit)
            finally:
                response.close()
        except TooLargeError:
            raise ResponseTooLargeError(
                f"the models listing from {self.url} is larger than {self.limit:,} bytes "
                "(TWEETGEN_MAX_RESPONSE_BYTES)",
                limit=self.limit,
            ) from None
        except httpx.TimeoutException:
            raise RequestTimeoutError(
                f"listing the models took longer than {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as error:
            raise NetworkError(f"cannot reach {self.url}: {type(error).__name__}") from None
        answer = decoded(response, content)
        if answer.status_code == 404:
            raise BadRequestError(
                f"{self.url} was not found (HTTP 404): check GEMINI_BASE_URL and "
                "TWEETGEN_API_VERSION",
                status_code=404,
            )
        if answer.status_code >= 300:
            raise error_from_response(answer, model="(models)", api_version=self.version)
        try:
            data = json.loads(content)
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
            raise InvalidResponseError(f"the models listing from {self.url} is not JSON models")
        return data


def list_models(
    base: str, version: str, key: str, *, timeout: float, limit: int
) -> list[ModelInfo]:
    """Every model the listing at ``base`` returns (bounded in pages, models, time and bytes)."""
    listing = _Listing(base, version, key, timeout, limit)
    models: list[ModelInfo] = []
    token: str | None = None
    with httpx.Client(follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_PAGES):
            data = listing.page(client, token)
            models.extend(m for m in map(_model, data.get("models", [])) if m is not None)
            following = data.get("nextPageToken")
            if not isinstance(following, str) or not following or len(models) >= MAX_MODELS:
                break
            token = following[:1000]
    return models[:MAX_MODELS]


def _limit(value: int | None) -> str:
    return f"{value:,}" if value is not None else "?"


def _table(models: list[ModelInfo]) -> list[str]:
    rows = [("MODEL", "DISPLAY NAME", "INPUT", "OUTPUT", "GENERATE", "METHODS")]
    for m in models:
        others = ",".join(x for x in m.methods if x != "generateContent") or "-"
        rows.append(
            (
                m.name,
                m.display_name or "-",
                _limit(m.input_token_limit),
                _limit(m.output_token_limit),
                "yes" if m.generates else "no",
                others,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    right = {2, 3}
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:5])
        )
        + "  "
        + row[5]
        for row in rows
    ]


def run(args: argparse.Namespace) -> int:
    """List the models (``--json``: as JSON); the sandbox's without a key."""
    from .config import load_settings

    settings = load_settings(timeout=getattr(args, "timeout", None))
    if settings.api_key is not None:
        from .logs import register_secret

        base, key, source = settings.base_url, settings.api_key.reveal(), "gemini"
        register_secret(key)  # a server that echoes it in an error is redacted
    else:
        from .sandbox import default_sandbox

        base, key, source = default_sandbox().url, "sandbox", "sandbox"
        print(
            "tweetgen: no Gemini API key is set (GEMINI_API_KEY), so these are the offline "
            "sandbox's models, not your key's",
            file=sys.stderr,
        )
    models = list_models(
        base,
        settings.api_version,
        key,
        timeout=settings.timeout,
        limit=settings.max_response_bytes,
    )
    if getattr(args, "json", False):
        shown = [{**asdict(m), "methods": list(m.methods)} for m in models]
        print(json.dumps({"source": source, "models": shown}, indent=2))
    else:
        for line in _table(models):
            print(line.rstrip())
        usable = sum(m.generates for m in models)
        print(f"{len(models)} models, {usable} with generateContent (set one with --model)")
    return EXIT_OK
