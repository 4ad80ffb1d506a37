"""The sandbox's Files API: the resumable two-step upload, file metadata and the download.

The wire shapes follow python-genai (``files.py``, ``_api_client.py``, ``_extra_utils.py``):

- start: ``POST {base}/upload/v1beta/files`` with ``X-Goog-Upload-Protocol: resumable``,
  ``X-Goog-Upload-Command: start``, ``X-Goog-Upload-Header-Content-Length: N`` and
  ``X-Goog-Upload-Header-Content-Type``, a JSON body ``{"file": {"displayName": ...}}``; the answer
  carries the session's address in ``X-Goog-Upload-URL`` and ``X-Goog-Upload-Status: active``;
- bytes: ``POST`` to that address with ``X-Goog-Upload-Command: upload`` (or ``upload, finalize``
  on the last chunk) and ``X-Goog-Upload-Offset``; ``upload`` answers ``active``, the finalizing
  one ``final`` with ``{"file": File}``;
- ``GET {base}/v1beta/files/ID`` the File;
  ``GET {base}/download/v1beta/files/ID:download?alt=media`` (and
  ``{base}/v1beta/files/ID:download?alt=media``, the SDK's form) the bytes;
  ``DELETE {base}/v1beta/files/ID``.

Not confirmed against the real service: the body of the start answer (empty here, ``{}``), the
exact error messages, and whether an uploaded (not generated) file may be downloaded (the SDK says
it may not; the sandbox allows it, which only tests use).
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_FILE_BYTES", "FileStore", "SandboxFile", "rfc3339"]

#: the Files API's limit on one file (2 GB, Google's documentation)
MAX_FILE_BYTES = 2 * 1024**3
_FILE = re.compile(r"^/v1beta/files/(?P<id>[A-Za-z0-9_-]+)(?P<download>:download)?$")
_DOWNLOAD = re.compile(r"^/download/v1beta/files/(?P<id>[A-Za-z0-9_-]+):download$")


def rfc3339(moment: float) -> str:
    """A moment as Google's JSON writes a Timestamp (UTC, ``Z``, microseconds)."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1e6):06d}Z"
    )


@dataclass
class SandboxFile:
    """One file: its metadata and, once finalized, its bytes."""

    name: str
    display_name: str
    mime_type: str
    size: int
    created: float
    data: bytearray = field(default_factory=bytearray)
    final: bool = False
    source: str = "UPLOADED"

    def resource(self, base: str) -> dict[str, Any]:
        """The ``File`` resource as the API returns it (``sizeBytes`` is an int64: a string)."""
        stamp = rfc3339(self.created)
        return {
            "name": self.name,
            "displayName": self.display_name,
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),
            "createTime": stamp,
            "updateTime": stamp,
            "expirationTime": rfc3339(self.created + 48 * 3600),
            "uri": f"{base}/v1beta/{self.name}",
            "downloadUri": f"{base}/download/v1beta/{self.name}:download?alt=media",
            "state": "ACTIVE" if self.final else "PROCESSING",
            "source": self.source,
        }


class FileStore:
    """Files in memory, their upload sessions, and the files batch jobs write."""

    def __init__(self, *, limit: int = MAX_FILE_BYTES) -> None:
        self.limit = limit
        self.files: dict[str, SandboxFile] = {}
        self._sessions: dict[str, SandboxFile] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _new_name(self, prefix: str) -> str:
        return f"files/{prefix}{next(self._ids):06d}"

    def start(self, headers: dict[str, str], body: object) -> tuple[int, dict[str, Any], str]:
        """Open an upload session: ``(status, body, session id)``; the id is ``""`` when refused."""
        if headers.get("x-goog-upload-protocol") != "resumable":
            return 400, _error(400, "Upload protocol must be resumable."), ""
        if headers.get("x-goog-upload-command", "").strip() != "start":
            return 400, _error(400, "The first upload request must have command 'start'."), ""
        try:
            size = int(headers.get("x-goog-upload-header-content-length", ""))
        except ValueError:
            return 400, _error(400, "X-Goog-Upload-Header-Content-Length is required."), ""
        if size > self.limit:
            message = f"File size {size} bytes exceeds the limit of {self.limit} bytes."
            return 400, _error(400, message), ""
        meta = body.get("file") if isinstance(body, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        mime = headers.get("x-goog-upload-header-content-type") or "application/octet-stream"
        with self._lock:
            name = self._new_name("upload-")
            upload = SandboxFile(name, str(meta.get("displayName") or ""), mime, size, time.time())
            session = name.split("/", 1)[1]
            self._sessions[session] = upload
        return 200, {}, session

    def chunk(
        self, session: str, headers: dict[str, str], data: bytes, base: str
    ) -> tuple[int, dict[str, Any], str]:
        """One ``upload`` (or ``upload, finalize``) request: ``(status, body, upload status)``."""
        upload = self._sessions.get(session)
        if upload is None:
            return 404, _error(404, "No such upload session."), "final"
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").split(",")}
        if "upload" not in command:
            return 400, _error(400, "Upload command must be 'upload'."), "active"
        try:
            offset = int(headers.get("x-goog-upload-offset", ""))
        except ValueError:
            offset = -1
        if offset != len(upload.data):
            message = (
                f"Upload offset {offset} does not match the {len(upload.data)} bytes received."
            )
            return 400, _error(400, message), "active"
        if len(upload.data) + len(data) > upload.size:
            return 400, _error(400, "More bytes were sent than the upload declared."), "final"
        upload.data.extend(data)
        if "finalize" not in command:
            return 200, {}, "active"
        if len(upload.data) != upload.size:
            message = f"The upload declared {upload.size} bytes; {len(upload.data)} arrived."
            return 400, _error(400, message), "final"
        with self._lock:
            del self._sessions[session]
            upload.final = True
            self.files[upload.name] = upload
        return 200, {"file": upload.resource(base)}, "final"

    def generated(self, display_name: str, data: bytes, mime: str = "application/jsonl") -> str:
        """Keep a file a batch job wrote (downloadable); its name."""
        with self._lock:
            name = self._new_name("batch-")
            self.files[name] = SandboxFile(
                name, display_name, mime, len(data), time.time(), bytearray(data), True, "GENERATED"
            )
        return name

    def read(self, name: str) -> bytes | None:
        """A finalized file's bytes (``files/ID``), or ``None``."""
        found = self.files.get(name)
        return bytes(found.data) if found is not None and found.final else None

    def get(self, path: str, base: str) -> tuple[int, dict[str, Any] | bytes] | None:
        """Answer a GET of a file or its bytes (``/download/...``); ``None``: not ours."""
        match = _FILE.match(path) or _DOWNLOAD.match(path)
        if match is None:
            return None
        name = f"files/{match.group('id')}"
        found = self.files.get(name)
        if found is None:
            return 404, _error(404, f"File {name} not found.")
        if match.re is _DOWNLOAD or match.groupdict().get("download"):
            return 200, bytes(found.data)
        return 200, found.resource(base)

    def delete(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """Answer a DELETE of ``/v1beta/files/ID``; ``None``: not ours."""
        match = _FILE.match(path)
        if match is None or match.group("download"):
            return None
        with self._lock:
            found = self.files.pop(f"files/{match.group('id')}", None)
        return (200, {}) if found is not None else (404, _error(404, "File not found."))


def _error(status: int, message: str) -> dict[str, Any]:
    from .gemini import error_body

    return error_body(status, message)
