"""Gemini's Batch and Files REST APIs, as python-genai (``batches.py``, ``files.py``) speaks them:
create a job (inline requests, or an uploaded JSONL file), read it, cancel it, find it by display
name, upload a file (the resumable two-step protocol) and download one.

Shapes (python-genai's source, Google's REST reference; what could not be confirmed is marked):

- ``POST {base}/v1beta/models/MODEL:batchGenerateContent`` ``{"batch": {"displayName",
  "inputConfig": {"requests": {"requests": [{"request": GenerateContentRequest, "metadata":
  {"key": KEY}}]}}}}``, or ``"inputConfig": {"fileName": "files/ID"}`` whose JSONL lines are
  ``{"key": KEY, "request": GenerateContentRequest}``. The answer is a long-running operation:
  ``name`` (``batches/ID``) and ``metadata`` (the GenerateContentBatch: ``state``, ``batchStats``,
  ``output`` once done). The SDK reads the state and output from ``metadata``; a bare batch
  resource (``state`` at the top) is read too.
- ``GET {base}/v1beta/batches/ID``; ``POST {base}/v1beta/batches/ID:cancel``; ``GET
  {base}/v1beta/batches?pageSize=&pageToken=`` (``operations``, ``nextPageToken``).
- Output: ``inlinedResponses.inlinedResponses[]`` (``response`` or ``error``, with the request's
  ``metadata``), in request order; or ``responsesFile`` (``files/ID``) whose lines are ``{"key",
  "response"}`` or ``{"key", "error"}`` (UNCONFIRMED beyond Google's batch guide's example).
- Upload: ``POST {base}/upload/v1beta/files`` with ``X-Goog-Upload-Protocol: resumable``,
  ``X-Goog-Upload-Command: start`` and the size and type as ``X-Goog-Upload-Header-*``; the answer's
  ``X-Goog-Upload-URL`` takes the bytes in 8 MB chunks (``upload``, the last ``upload, finalize``,
  each with its ``X-Goog-Upload-Offset``) until ``X-Goog-Upload-Status: final`` and ``{"file"}``.
- Download: ``GET {base}/download/v1beta/files/ID:download?alt=media`` (Google's REST guide; the SDK
  uses ``{base}/v1beta/files/ID:download?alt=media``, which the sandbox serves too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .errors import InvalidResponseError, TweetGenError
from .providers._http import transport_error
from .providers.gemini import GeminiProvider

__all__ = ["CHUNK_BYTES", "DONE_STATES", "BatchClient", "JobState"]

#: the upload chunk (python-genai's ``CHUNK_SIZE``)
CHUNK_BYTES = 8 * 1024 * 1024
#: states after which a job no longer changes
DONE_STATES = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)
#: the slowest an upload, a download or a 20 MB create may take, in seconds
_LONG_TIMEOUT = 300.0


@dataclass(frozen=True)
class JobState:
    """What one read of a job says."""

    name: str
    state: str
    display_name: str = ""
    stats: dict[str, int] = field(default_factory=dict)
    #: the inline answers (``response`` or ``error``, with ``metadata``), once done
    inline: tuple[dict[str, Any], ...] | None = None
    #: the answers' file (``files/ID``), once done
    responses_file: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES

    @classmethod
    def parse(cls, data: object) -> JobState:
        """A job from an operation (``metadata`` holds the batch) or a bare batch resource."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise InvalidResponseError("the batch API answered without a job name")
        meta: dict[str, Any] = _object(data.get("metadata")) or data
        output = _object(meta.get("output")) or _object(data.get("response"))
        inline = _object(output.get("inlinedResponses")).get("inlinedResponses")
        stats = _object(meta.get("batchStats"))
        error = _object(data.get("error"))
        return cls(
            name=data["name"],
            state=str(meta.get("state") or "BATCH_STATE_UNSPECIFIED"),
            display_name=str(meta.get("displayName") or ""),
            stats={k: _count(v) for k, v in stats.items()},
            inline=tuple(i for i in inline if isinstance(i, dict))
            if isinstance(inline, list)
            else None,
            responses_file=output.get("responsesFile"),
            error=str(error.get("message")) if error else None,
        )


def _object(value: object) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _count(value: object) -> int:
    """An int64 of Google's JSON (a string) or a plain number; 0 when neither."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return 0
    try:
        return int(value)
    except ValueError:
        return 0


class BatchClient:
    """The batch and files calls for one Gemini provider (its base URL, key and model)."""

    def __init__(self, provider: GeminiProvider) -> None:
        marker = f"/{provider.api_version}/models/"
        self.base = provider.url[: provider.url.index(marker)]
        self.model = provider.model
        self._provider = provider
        long = httpx.Timeout(max(provider.timeout, _LONG_TIMEOUT), connect=provider.connect_timeout)
        #: a poll, a cancel, a list: the provider's own timeout (a create, an upload and a download
        #: move megabytes and take the long one)
        self._short = httpx.Timeout(provider.timeout, connect=provider.connect_timeout)
        self._client = httpx.Client(
            timeout=long,
            headers=provider._headers(),  # the key's header: never logged
            transport=provider._transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> BatchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One request; an HTTP error is mapped as a ``generateContent`` one, a transport error
        too."""
        try:
            response = self._client.request(method, url, **options)
        except httpx.RequestError as error:
            raise transport_error(error) from error
        if response.status_code >= 400:
            raise self._provider.error_from_response(response)
        return response

    def _json(self, method: str, url: str, **options: Any) -> Any:
        response = self._call(method, url, **options)
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise InvalidResponseError("the batch API answered with something not JSON") from None

    # --- jobs -----------------------------------------------------------------------------------

    def create(self, display_name: str, source: dict[str, Any]) -> JobState:
        """Submit a job; ``source`` its ``inputConfig`` (``requests`` or ``fileName``)."""
        body = {"batch": {"displayName": display_name, "inputConfig": source}}
        url = f"{self.base}/v1beta/models/{self.model}:batchGenerateContent"
        return JobState.parse(self._json("POST", url, json=body))

    def get(self, name: str) -> JobState:
        url = f"{self.base}/v1beta/{name}"
        return JobState.parse(self._json("GET", url, timeout=self._short))

    def cancel(self, name: str) -> None:
        self._json("POST", f"{self.base}/v1beta/{name}:cancel", timeout=self._short)

    def find(self, display_name: str, *, pages: int = 10) -> JobState | None:
        """The newest listed job with this display name (a create whose answer was lost)."""
        token, found = "", None
        for _ in range(pages):
            query = {"pageSize": 100, "pageToken": token}
            url = f"{self.base}/v1beta/batches"
            page = self._json("GET", url, params=query, timeout=self._short)
            for item in page.get("operations") or ():
                job = JobState.parse(item)
                found = job if job.display_name == display_name else found
            token = page.get("nextPageToken") or ""
            if not token:
                break
        return found

    # --- files ----------------------------------------------------------------------------------

    def upload(self, path: Path, display_name: str, mime: str = "application/jsonl") -> str:
        """Upload a file by the resumable protocol; its name (``files/ID``)."""
        size = path.stat().st_size
        start = self._call(
            "POST",
            f"{self.base}/upload/v1beta/files",
            json={"file": {"displayName": display_name}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": mime,
            },
        )
        url = start.headers.get("x-goog-upload-url")
        if not url:
            raise InvalidResponseError("the upload was not started: no X-Goog-Upload-URL came back")
        return self._send_chunks(path, size, url)

    def _send_chunks(self, path: Path, size: int, url: str) -> str:
        offset, response = 0, None
        with path.open("rb") as source:
            while True:
                chunk = source.read(CHUNK_BYTES)
                last = offset + len(chunk) >= size
                response = self._call(
                    "POST",
                    url,
                    content=chunk,
                    headers={
                        "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                        "X-Goog-Upload-Offset": str(offset),
                    },
                )
                offset += len(chunk)
                if last or response.headers.get("x-goog-upload-status") != "active":
                    break
        if response.headers.get("x-goog-upload-status") != "final":
            raise InvalidResponseError("the upload did not finish (its status is not final)")
        try:
            name = response.json()["file"]["name"]
        except (ValueError, KeyError, TypeError):
            raise InvalidResponseError("the finished upload did not name its file") from None
        return str(name)

    def download_lines(self, name: str) -> Iterator[dict[str, Any]]:
        """The JSON lines of a file (``files/ID``), streamed."""
        url = f"{self.base}/download/v1beta/{name}:download"
        try:
            with self._client.stream("GET", url, params={"alt": "media"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._provider.error_from_response(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield _line(line)
        except httpx.RequestError as error:
            raise transport_error(error) from error


def _line(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidResponseError("a line of the batch's answers is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidResponseError("a line of the batch's answers is not a JSON object")
    return data


def is_transient(error: TweetGenError) -> bool:
    """Whether a poll that failed this way is worth another poll later (the job goes on)."""
    from .errors import AuthenticationError, ModelNotFoundError
    from .providers.factory import FALLBACK_ERRORS

    return isinstance(error, FALLBACK_ERRORS) and not isinstance(
        error, (AuthenticationError, ModelNotFoundError)
    )
