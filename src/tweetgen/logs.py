"""Structured logging: structlog on the standard library, JSON Lines to a file, redaction, previews.

Every record (tweetgen's own events and other libraries' records alike) passes through one chain
of processors before any renderer sees it: context, level, UTC timestamp, exception formatting,
redaction of secrets (:mod:`tweetgen.redaction`), truncation of oversized strings, then JSON (file,
:mod:`tweetgen.logfile`) or JSON / key-value (console).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any, TextIO

import structlog

from .errors import ConfigurationError
from .logfile import WatchedRotatingFileHandler, write_line
from .redaction import (
    DEFAULT_PREVIEW_LENGTH,
    MIN_SECRET_PIECE,
    REDACTED,
    Preview,
    Redactor,
    _secrets,  # noqa: F401 - tests put back the registered secrets
    _state,  # the preview length set up here
    contains_secret,
    field_redactor,
    preview,
    redact_text,
    register_secret,
)

__all__ = [
    "DEFAULT_PREVIEW_LENGTH",
    "LEVELS",
    "MIN_SECRET_PIECE",
    "REDACTED",
    "Preview",
    "Redactor",
    "WatchedRotatingFileHandler",
    "contains_secret",
    "get_logger",
    "preview",
    "redact_text",
    "register_secret",
    "setup_logging",
]

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_FIELD_LENGTH = 4000
LOGGER_NAME = "tweetgen"
_QUIET_LIBRARIES = ("httpx", "httpcore", "hpack", "urllib3", "asyncio")


#: at most this many items of a list or mapping field are logged
MAX_FIELD_ITEMS = 50


def _cut(value: Any, depth: int = 0) -> Any:
    """``value`` with every string cut to :data:`MAX_FIELD_LENGTH` (a traceback keeps its start and
    its end, where the error is) and every collection to :data:`MAX_FIELD_ITEMS` items, however
    deeply nested."""
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


_FIRST = ("event", "level", "timestamp")
#: values that are never cut
_PLAIN = frozenset({int, float, bool, type(None)})


def _cut_and_order(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Cut every field (see :func:`_cut`) and put ``event``, ``level`` and ``timestamp`` first, in
    one pass over the event."""
    ordered: dict[str, Any] = {key: None for key in _FIRST if key in event_dict}
    for key, value in event_dict.items():
        kind = type(value)
        if (
            kind in _PLAIN
            or key.startswith("_")
            or (kind is str and len(value) <= MAX_FIELD_LENGTH)
        ):
            ordered[key] = value
        else:
            ordered[key] = _cut(value)
    return ordered


def trace_ids() -> dict[str, str]:
    """The current span's ``trace_id`` and ``span_id`` in hex, or ``{}`` when nothing is traced."""
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
    """A structlog processor that adds the current span's ``trace_id`` and ``span_id`` (keeps
    values already set)."""
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
    """The processors of a structlog logger that hands its events to the handlers
    ``setup_logging`` installs."""
    return [
        structlog.stdlib.filter_by_level,
        *_shared,
        structlog.processors.format_exc_info,
        Redactor(mark=True),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]


def get_logger() -> Any:
    """Return tweetgen's logger: structlog over the stdlib logger ``tweetgen`` (silent until set
    up)."""
    return structlog.wrap_logger(
        logging.getLogger(LOGGER_NAME),
        processors=_chain(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )


_own = logging.getLogger(LOGGER_NAME)
_own_handlers = [logging.NullHandler()]
_own.addHandler(_own_handlers[0])


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """The formatter of the handlers ``setup_logging`` installs; :meth:`render` is the line it
    makes of an event that went through the chain already (the direct route)."""

    def __init__(self, renderer: Any) -> None:
        super().__init__(
            foreign_pre_chain=[*_shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                Redactor(),
                _cut_and_order,
                renderer,
            ],
        )
        self.renderer = renderer


def _formatter(renderer: Any) -> logging.Formatter:
    return _Formatter(renderer)


def _one_line(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """For the human console: an ``exception`` field that is a short description (``HTTP 503:
    ...``, the seed's ``Retry attempt`` field), not a traceback, stays on the event's line as
    ``error=...``."""
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
    """Writes to whatever ``sys.stderr`` is when a record comes, so a live progress bar that
    redirects stderr (rich) prints log lines above itself instead of being overwritten by them."""

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
    """The application's logging set-up: tweetgen's events, the application's own structlog and
    stdlib loggers and other libraries' records go through one chain (context, timestamps,
    redaction, cuts) to stderr and a JSON Lines file; safe to call twice.

    ``configure_structlog=False`` leaves structlog's global configuration alone (a library embedding
    tweetgen whose application configures structlog itself); tweetgen's own events are routed either
    way.
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


# --- the direct route of tweetgen's own events ------------------------------------------------
_OWN_FIELDS = frozenset({"level", "timestamp"})  # not redacted (the Redactor's rule)


def _shaped(event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """What the chain's :class:`Redactor` then the formatter's :func:`_cut_and_order` make of an
    event, in one pass."""
    redact = field_redactor()
    ordered: dict[str, Any] = {key: None for key in _FIRST if key in event_dict}
    for key, value in event_dict.items():
        if type(value) in _PLAIN or key.startswith("_"):
            ordered[key] = value
            continue
        if key not in _OWN_FIELDS:
            value = redact(value)
        short = type(value) is str and len(value) <= MAX_FIELD_LENGTH
        ordered[key] = value if short else _cut(value)
    return ordered


_METHODS = {logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error"}
_DIRECT = (WatchedRotatingFileHandler, logging.StreamHandler, _StderrHandler)


def _reached(levelno: int) -> list[logging.Handler] | None:
    """The handlers a record of tweetgen's at ``levelno`` reaches, when each is one that
    ``setup_logging`` installed (its formatter, no filter) and no logger on the way filters;
    ``None`` when anything else would see the record."""
    root = logging.root
    if (
        _own.handlers != _own_handlers
        or _own.filters
        or _own.disabled
        or not _own.propagate
        or root.filters
    ):
        return None
    reached = []
    for handler in root.handlers:
        if levelno < handler.level:
            continue
        if (
            type(handler) not in _DIRECT
            or not getattr(handler, "_tweetgen", False)
            or type(handler.formatter) is not _Formatter
            or handler.filters
        ):
            return None
        reached.append(handler)
    return reached


def emit_direct(name: str, levelno: int, fields: dict[str, Any]) -> bool:
    """Log tweetgen's event ``name`` with ``fields`` (taken over) straight to the handlers
    ``setup_logging`` installed: the same processors as the logger's chain, then each handler's
    formatter's last two, with no ``LogRecord`` and no second pass. Returns ``False`` (nothing done)
    when another handler, a filter or a traceback asks for the standard route.

    The line written is the one the standard route writes (tests/test_perf_paths.py compares them).
    """
    if not _own.isEnabledFor(levelno):
        return True
    handlers = _reached(levelno)
    if handlers is None or "exc_info" in fields:
        return False
    if not handlers:
        return True
    method = _METHODS[levelno]
    event_dict: MutableMapping[str, Any] = fields
    event_dict["event"] = name
    for processor in _shared:  # the chain's, then its Redactor and the formatters' last two
        event_dict = processor(_own, method, event_dict)
    shaped = _shaped(event_dict)
    for handler in handlers:
        renderer = handler.formatter.renderer  # type: ignore[union-attr]
        write_line(handler, renderer(_own, method, dict(shaped)), levelno)
    return True
