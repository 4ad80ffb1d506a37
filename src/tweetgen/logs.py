"""Structured logging: structlog on the standard library, JSON Lines to a file, redaction, previews.

Every record (tweetgen's own events and other libraries' records alike) passes through one chain of
processors before any renderer sees it: context, level, UTC timestamp, exception formatting,
redaction of secrets, truncation of oversized strings, then JSON (file) or JSON / key-value (console).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import logging.handlers
import os
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from .errors import ConfigurationError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: size rotation is then safe for one process only
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LEVELS",
    "Redactor",
    "WatchedRotatingFileHandler",
    "get_logger",
    "preview",
    "redact_text",
    "register_secret",
    "setup_logging",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_PREVIEW_LENGTH = 100
MAX_FIELD_LENGTH = 4000
REDACTED = "[REDACTED]"
LOGGER_NAME = "tweetgen"
_QUIET_LIBRARIES = ("httpx", "httpcore", "hpack", "urllib3", "asyncio")

_state: dict[str, Any] = {"preview_length": DEFAULT_PREVIEW_LENGTH}
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_PATTERNS = (
    # Google API keys: "AIza" + 35 characters
    (re.compile(r"AIza[0-9A-Za-z_\-]{35}"), lambda m: REDACTED),
    # key=... in query strings and form bodies
    # (values only: at least 8 key characters, so a sentence such as "pass api_key=... or" stays as written)
    (
        re.compile(r"(?i)\b((?:api_?)?key=)[A-Za-z0-9_\-.~+/%=]{8,}"),
        lambda m: m.group(1) + REDACTED,
    ),
    # header values, also in reprs such as {'x-goog-api-key': '...'}
    (
        re.compile(
            r"(?i)((?:x-goog-api-key|authorization|api-key|x-api-key)[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',}]+"
        ),
        lambda m: m.group(1) + REDACTED,
    ),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=\-]+"), lambda m: m.group(1) + REDACTED),
    # user-info in URLs: https://user:password@host/...
    (
        re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"'<>]+@"),
        lambda m: m.group(1) + REDACTED + "@",
    ),
)


#: pieces of a registered secret at least this long are redacted too (a key split in two leaks < 8 characters)
MIN_SECRET_PIECE = 8


def register_secret(value: str | None) -> None:
    """Add a value that must never appear in any output (ignored when shorter than 4 chars)."""
    if value and len(value) >= 4:
        with _secrets_lock:
            _secrets.add(value)


def _encodings(secret: str) -> set[str]:
    """The forms a secret takes when something encodes it: percent-encoded, and base64 at every alignment."""
    raw = secret.encode("utf-8")
    forms = {
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret),
    }
    for offset in range(
        3
    ):  # inside a longer base64 text, the secret's characters depend on its offset
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + raw).decode("ascii").rstrip("=")
            start = -(-offset * 4 // 3)  # skip the characters that mix in the padding bytes
            stop = (offset + len(raw)) * 4 // 3  # and the last ones, which mix in what follows
            if stop - start >= MIN_SECRET_PIECE:
                forms.add(encoded[start:stop])
    forms.discard(secret)
    return {f for f in forms if len(f) >= MIN_SECRET_PIECE}


@dataclasses.dataclass(frozen=True)
class _Secret:
    """A registered secret and what finds it cheaply: its encoded forms, and the 8-character ends from which a
    piece of it (a key split in two) is grown to its full length. Plain substring search finds the anchors, so
    text without a secret costs a few ``in`` tests, not a regex pass."""

    value: str
    forms: tuple[str, ...]
    prefix: str | None
    suffix: str | None

    @classmethod
    def of(cls, value: str) -> _Secret:
        def usable(piece: str) -> str | None:
            # a piece that is nearly one repeated character ("xxxxxxxx" of a test key) would redact ordinary text
            split = len(value) >= 2 * MIN_SECRET_PIECE and len(set(piece)) >= 4
            return piece if split else None

        forms = tuple(sorted(_encodings(value), key=len, reverse=True))
        return cls(
            value, forms, usable(value[:MIN_SECRET_PIECE]), usable(value[-MIN_SECRET_PIECE:])
        )

    def found(self, text: str) -> bool:
        anchors = (self.value, *self.forms, self.prefix, self.suffix)
        return any(anchor is not None and anchor in text for anchor in anchors)

    def redact(self, text: str) -> str:
        for whole in (self.value, *self.forms):
            if whole in text:
                text = text.replace(whole, REDACTED)
        if self.prefix is not None and self.prefix in text:
            text = self._grow(text, self.prefix, forward=True)
        if self.suffix is not None and self.suffix in text:
            text = self._grow(text, self.suffix, forward=False)
        return text

    def _grow(self, text: str, anchor: str, *, forward: bool) -> str:
        """Redact every occurrence of ``anchor`` grown to the longest prefix (or suffix) of the secret."""
        value, pieces, position = self.value, [], 0
        while (found := text.find(anchor, position)) >= 0:
            start, stop = found, found + len(anchor)
            if forward:
                while (
                    stop < len(text)
                    and stop - start < len(value)
                    and text[stop] == value[stop - start]
                ):
                    stop += 1
            else:
                left = len(value) - len(anchor)
                while start > position and left > 0 and text[start - 1] == value[left - 1]:
                    start, left = start - 1, left - 1
            pieces += [text[position:start], REDACTED]
            position = stop
        return "".join(pieces) + text[position:]


_registered: dict[str, Any] = {"secrets": frozenset(), "found": ()}


def _registered_secrets() -> tuple[_Secret, ...]:
    """The registered secrets, longest first (rebuilt only when the registered set changes)."""
    with _secrets_lock:
        current = frozenset(_secrets)
    if current != _registered["secrets"]:
        _registered["found"] = tuple(_Secret.of(v) for v in sorted(current, key=len, reverse=True))
        _registered["secrets"] = current
    found: tuple[_Secret, ...] = _registered["found"]
    return found


def contains_secret(text: str) -> bool:
    """Whether ``text`` holds a registered secret in any form (a tweet must never publish one)."""
    return any(secret.found(text) for secret in _registered_secrets())


def redact_text(text: str) -> str:
    """Replace registered secrets (also percent-encoded, base64-encoded or split) and secret-shaped
    substrings (Google keys, ``key=`` values, auth headers, bearer tokens, URL user-info) with ``[REDACTED]``."""
    for secret in _registered_secrets():
        text = secret.redact(text)
    for regex, repl in _PATTERNS:
        text = regex.sub(repl, text)
    return text


_SECRET_KEYS = frozenset(
    {"x-goog-api-key", "authorization", "api-key", "x-api-key", "api_key", "apikey"}
)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            _redact_value(k): REDACTED if str(k).lower() in _SECRET_KEYS and v else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redact_value(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact_text(str(value))


_DONE = "_tweetgen_redacted"


class Redactor:
    """Processor: redact every value of the event (nested, exceptions as text).

    tweetgen's own events are redacted once, in their logger's chain (so even a foreign handler never sees
    a secret), and marked; the handlers' formatters then redact only the records that are not marked
    (other libraries', or other structlog chains').
    """

    def __init__(self, *, mark: bool = False) -> None:
        self.mark = mark

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if event_dict.pop(_DONE, False):
            return event_dict
        for key, value in list(event_dict.items()):
            if not key.startswith("_"):
                event_dict[key] = _redact_value(value)
        if self.mark:
            event_dict[_DONE] = True
        return event_dict


#: at most this many items of a list or mapping field are logged
MAX_FIELD_ITEMS = 50


def _cut(value: Any, depth: int = 0) -> Any:
    """``value`` with every string cut to :data:`MAX_FIELD_LENGTH` (a traceback keeps its start and its end,
    where the error is) and every collection to :data:`MAX_FIELD_ITEMS` items, however deeply nested."""
    if isinstance(value, str):
        if len(value) <= MAX_FIELD_LENGTH:
            return value
        half = MAX_FIELD_LENGTH // 2
        return f"{value[:half]} ...[{len(value) - 2 * half} characters cut]... {value[-half:]}"
    if depth > 5:
        return _cut(repr(value))
    if isinstance(value, dict):
        items = list(value.items())
        cut = {str(_cut(k, depth + 1)): _cut(v, depth + 1) for k, v in items[:MAX_FIELD_ITEMS]}
        if len(items) > MAX_FIELD_ITEMS:
            cut["..."] = f"{len(items) - MAX_FIELD_ITEMS} more"
        return cut
    if isinstance(value, (list, tuple)):
        cut_list = [_cut(v, depth + 1) for v in value[:MAX_FIELD_ITEMS]]
        if len(value) > MAX_FIELD_ITEMS:
            cut_list.append(f"... {len(value) - MAX_FIELD_ITEMS} more")
        return cut_list
    return value


def _truncate(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if not key.startswith("_"):
            event_dict[key] = _cut(value)
    return event_dict


_FIRST = ("event", "level", "timestamp")


def _reorder(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    ordered = {k: event_dict[k] for k in _FIRST if k in event_dict}
    ordered.update((k, v) for k, v in event_dict.items() if k not in ordered)
    return ordered


def preview(text: str, length: int | None = None) -> str:
    """Cut ``text`` to the configured preview length, marking the cut with ``...``."""
    limit = _state["preview_length"] if length is None else length
    text = redact_text(text)
    return text if len(text) <= limit else text[:limit] + "..."


def trace_ids() -> dict[str, str]:
    """The current span's ``trace_id`` and ``span_id`` in hex, or ``{}`` when nothing is being traced."""
    if "opentelemetry.trace" not in sys.modules:
        return {}
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {
        "trace_id": trace.format_trace_id(span_context.trace_id),
        "span_id": trace.format_span_id(span_context.span_id),
    }


def add_trace_ids(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor that adds the current span's ``trace_id`` and ``span_id`` (keeps values already set)."""
    for key, value in trace_ids().items():
        event_dict.setdefault(key, value)
    return event_dict


_timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
_shared: list[Any] = [
    structlog.contextvars.merge_contextvars,
    add_trace_ids,
    structlog.stdlib.add_log_level,
    _timestamper,
]


def _chain() -> list[Any]:
    """The processors of a structlog logger that hands its events to the handlers ``setup_logging`` installs."""
    return [
        structlog.stdlib.filter_by_level,
        *_shared,
        structlog.processors.format_exc_info,
        Redactor(mark=True),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]


def get_logger() -> Any:
    """Return tweetgen's logger: structlog over the stdlib logger ``tweetgen`` (silent until set up)."""
    return structlog.wrap_logger(
        logging.getLogger(LOGGER_NAME),
        processors=_chain(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )


logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


class WatchedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Append to a file; reopen it when renamed or removed from outside; optionally rotate by size."""

    def __init__(self, filename: str, *, max_bytes: int = 0, backup_count: int = 0) -> None:
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self._identity = self._stat_stream()
        self.failed = False  # a write failed: reported once

    def _stat_stream(self) -> tuple[int, int] | None:
        if self.stream is None:
            return None
        st = os.fstat(self.stream.fileno())
        return st.st_dev, st.st_ino

    def _reopen_if_moved(self) -> None:
        try:
            st = os.stat(self.baseFilename)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if current is None or current != self._identity:
            if self.stream is not None:
                self.stream.flush()
                self.stream.close()
            self.stream = self._open()
            self._identity = self._stat_stream()

    def doRollover(self) -> None:  # noqa: N802 - the stdlib's name
        super().doRollover()
        self._identity = self._stat_stream()

    @contextlib.contextmanager
    def _shared_file(self) -> Iterator[None]:
        """With size rotation, hold an exclusive lock on ``FILE.lock`` for one check-rotate-write step, so
        several processes appending to one file never rotate it twice or write into a rotated-away file."""
        if not self.maxBytes or fcntl is None:
            yield
            return
        with open(self.baseFilename + ".lock", "a", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self._shared_file():
                self._reopen_if_moved()
                if self.shouldRollover(record):
                    self.doRollover()
                logging.FileHandler.emit(self, record)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the file; a final flush that fails (full disk) was already reported and is not raised."""
        try:
            super().close()
        except OSError:
            stream, self.stream = self.stream, None
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - the stdlib's name
        """Say once, in one line on stderr, that the log file cannot be written (full disk...); never a
        traceback per event, never an exception into the caller. Events that cannot be written are dropped."""
        if self.failed:
            return
        self.failed = True
        error = sys.exc_info()[1]
        reason = getattr(error, "strerror", None) or error or "unknown error"
        with contextlib.suppress(Exception):
            sys.stderr.write(
                f"tweetgen: cannot write the log file {self.baseFilename}: {reason}; "
                "later log events are not written to it (set TWEETGEN_LOG_FILE or --log-file to another place)\n"
            )


def _formatter(renderer: Any) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            Redactor(),
            _truncate,
            _reorder,
            renderer,
        ],
    )


def _one_line(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """For the human console: an ``exception`` field that is a short description (``HTTP 503: ...``, the seed's
    ``Retry attempt`` field), not a traceback, stays on the event's line as ``error=...``."""
    exception = event_dict.get("exception")
    if isinstance(exception, str) and "\n" not in exception:
        event_dict["error"] = event_dict.pop("exception")
    return event_dict


def _console_renderer(console_format: str, stream: TextIO) -> Any:
    if console_format == "auto":
        console_format = "pretty" if stream.isatty() else "json"
    if console_format == "json":
        return structlog.processors.JSONRenderer(ensure_ascii=False)
    if console_format == "pretty":
        pretty = structlog.dev.ConsoleRenderer(colors=stream.isatty(), sort_keys=False)
        return lambda logger, method, event_dict: pretty(
            logger, method, _one_line(logger, method, event_dict)
        )
    raise ConfigurationError(f"console_format must be auto, json or pretty, got {console_format!r}")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, so a live progress bar that redirects stderr
    (rich) prints log lines above itself instead of being overwritten by them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def _file_handler(log_file: str, max_bytes: int, backup_count: int) -> logging.Handler:
    path = Path(log_file).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return WatchedRotatingFileHandler(str(path), max_bytes=max_bytes, backup_count=backup_count)
    except OSError as exc:
        from .oserrors import explain_path_error

        raise ConfigurationError(
            f"cannot write log file {path}: {explain_path_error(exc, path)}; choose another path "
            "(TWEETGEN_LOG_FILE, or an empty value for no log file)",
            setting="log_file",
        ) from None


def _check_level(log_level: str) -> int:
    name = str(log_level).strip().upper()
    if name not in LEVELS:
        raise ConfigurationError(
            f"log level must be one of {', '.join(LEVELS)} (any case), got {log_level!r}"
        )
    return int(getattr(logging, name))


def setup_logging(
    log_level: str = "INFO",
    log_file: str | None = "tweet_generator.log",
    *,
    console: bool = True,
    console_format: str = "auto",
    stream: TextIO | None = None,
    preview_length: int = DEFAULT_PREVIEW_LENGTH,
    max_bytes: int = 0,
    backup_count: int = 5,
    secrets: Iterable[str] = (),
    console_level: str | None = None,
    configure_structlog: bool = True,
) -> None:
    """The application's logging set-up: tweetgen's events, the application's own structlog and stdlib loggers
    and other libraries' records go through one chain (context, timestamps, redaction, cuts) to stderr and a
    JSON Lines file; safe to call twice.

    ``configure_structlog=False`` leaves structlog's global configuration alone (a library embedding tweetgen
    whose application configures structlog itself); tweetgen's own events are routed either way.
    """
    level = _check_level(log_level)
    if preview_length < 1 or max_bytes < 0 or backup_count < 0:
        raise ConfigurationError("preview_length must be >= 1, max_bytes and backup_count >= 0")
    handlers: list[logging.Handler] = []
    if log_file:
        file_handler = _file_handler(log_file, max_bytes, backup_count)
        file_handler.setFormatter(_formatter(structlog.processors.JSONRenderer(ensure_ascii=False)))
        handlers.append(file_handler)
    if console:
        out = stream if stream is not None else sys.stderr
        console_handler = logging.StreamHandler(out) if stream is not None else _StderrHandler()
        if console_level is not None:
            console_handler.setLevel(_check_level(console_level))
        console_handler.setFormatter(_formatter(_console_renderer(console_format, out)))
        handlers.append(console_handler)
    for secret in secrets:
        register_secret(secret)
    _state["preview_length"] = preview_length
    _install(handlers, level)
    if configure_structlog:
        structlog.configure(
            processors=_chain(),
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )


def _install(handlers: list[logging.Handler], level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_tweetgen", False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler._tweetgen = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(LOGGER_NAME).setLevel(level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(level if level <= logging.DEBUG else logging.WARNING)
