"""Where the sandbox's batch and files requests go: the paths of :mod:`.batches` and :mod:`.files`
under the sandbox's prefix, the key check, and each job request answered by the code that answers
``generateContent`` (:class:`~tweetgen.sandbox.gemini.GeminiRoute`, the fault script included)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .faults import ANSWER_KINDS, FaultScript
from .gemini import GeminiRoute

if TYPE_CHECKING:
    from .server import SandboxServer

__all__ = ["Reply", "answerer", "delete", "get", "post"]

#: status, body (JSON object, or bytes sent as they are), extra headers
Reply = tuple[int, "dict[str, Any] | bytes", dict[str, str]]
_UPLOAD = "/upload/v1beta/files"
#: gRPC codes of the HTTP statuses a request's error in a job can have (google.rpc.Code)
_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 408: 4, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


def answerer(faults: FaultScript) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """How a job answers one of its requests: the next step of the fault script, answered by
    :class:`GeminiRoute` as ``generateContent`` would; an error status becomes that request's
    ``error`` (a ``google.rpc.Status``), never the job's."""

    def answer(model: str, request: dict[str, Any]) -> dict[str, Any]:
        route = GeminiRoute(model, "v1beta")
        invalid = route.invalid(request)
        if invalid is not None:
            return {"error": _status(*invalid)}
        fault = faults.next()
        if fault.kind == "status":
            status, payload, _ = route.status(fault)
            return {"error": _status(status, payload)}
        if fault.kind == "blocked":
            return {"response": route.blocked()}
        if fault.kind == "max-tokens":
            return {"response": route.max_tokens()}
        kind = fault.kind if fault.kind in ANSWER_KINDS else "ok"  # transport faults: no meaning
        return {"response": route.answer(request, kind)}

    return answer


def _status(status: int, payload: dict[str, Any]) -> dict[str, Any]:
    message = str((payload.get("error") or {}).get("message") or f"HTTP {status}")
    return {"code": _GRPC.get(status, 2), "message": message}


def _local(sandbox: SandboxServer, path: str) -> str | None:
    """The path below the sandbox's prefix, or ``None`` when it is not under it."""
    if not path.startswith(sandbox.prefix + "/"):
        return None
    return path[len(sandbox.prefix) :]


def _refused(sandbox: SandboxServer, headers: dict[str, str]) -> Reply | None:
    if sandbox.require_key is None or headers.get("x-goog-api-key") == sandbox.require_key:
        return None
    status, body = GeminiRoute("", "v1beta").invalid_key()
    return status, body, {}


def post(sandbox: SandboxServer, path: str, headers: dict[str, str], raw: bytes) -> Reply | None:
    """Answer a POST to the batch or files API; ``None`` when the path is another one."""
    local = _local(sandbox, path)
    if local is None:
        return None
    bare, _, query = local.partition("?")
    batches = sandbox.batches
    if not (bare == _UPLOAD or bare.endswith((":batchGenerateContent", ":cancel"))):
        return None
    refused = _refused(sandbox, headers)
    if refused is not None:
        return refused
    if bare == _UPLOAD:
        return _upload(sandbox, query, headers, raw)
    reply = batches.create(bare, raw) or batches.cancel(bare)
    return None if reply is None else (*reply, {})


def _upload(sandbox: SandboxServer, query: str, headers: dict[str, str], raw: bytes) -> Reply:
    files = sandbox.files
    params = dict(part.split("=", 1) for part in query.split("&") if "=" in part)
    session = params.get("upload_id")
    if session is None:
        import json

        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        status, payload, session = files.start(headers, body)
        if status != 200:
            return status, payload, {}
        url = f"{sandbox.url}{_UPLOAD}?upload_id={session}&upload_protocol=resumable"
        return 200, b"", {"X-Goog-Upload-URL": url, "X-Goog-Upload-Status": "active"}
    status, payload, state = files.chunk(session, headers, raw, sandbox.url)
    extra = {"X-Goog-Upload-Status": state}
    return status, (payload if payload or status != 200 else b""), extra


def get(sandbox: SandboxServer, path: str, headers: dict[str, str]) -> Reply | None:
    """Answer a GET of a job, the job list, a file or a file's bytes; ``None``: another path."""
    local = _local(sandbox, path)
    if local is None:
        return None
    bare = local.split("?", 1)[0]
    if not bare.startswith(("/v1beta/batches", "/v1beta/files/", "/download/v1beta/files/")):
        return None
    refused = _refused(sandbox, headers)
    if refused is not None:
        return refused
    reply = sandbox.batches.get(local, answerer(sandbox.faults)) or sandbox.files.get(
        bare, sandbox.url
    )
    return None if reply is None else (*reply, {})


def delete(sandbox: SandboxServer, path: str, headers: dict[str, str]) -> Reply | None:
    """Answer a DELETE of a job or a file; ``None``: another path."""
    local = _local(sandbox, path)
    if local is None:
        return None
    refused = _refused(sandbox, headers)
    if refused is not None:
        return refused
    reply = sandbox.batches.delete(local) or sandbox.files.delete(local.split("?", 1)[0])
    return None if reply is None else (*reply, {})
