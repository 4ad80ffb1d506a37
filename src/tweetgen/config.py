"""Settings: explicit argument > environment > ``.env`` in the working directory > default."""

from __future__ import annotations

import functools
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_LOG_FILE",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "ENVIRONMENT_VARIABLES",
    "PROVIDERS",
    "Secret",
    "Settings",
    "load_settings",
    "provider_chain",
]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"
DEFAULT_MODEL = "gemini-flash-latest"
DEFAULT_LOG_FILE = "tweet_generator.log"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
#: the largest answer read, counted after decompression: 4x the largest real generateContent answer
#: (8 candidates x 65,536 output tokens x ~4 bytes = 2 MiB; tweetgen asks for 1,024 tokens, a few
#: KiB)
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024
_KEY_CHARS = re.compile(
    r"[\x21-\x7e]+"
)  # printable ASCII, no spaces: what an HTTP header can carry
PROVIDERS = ("auto", "gemini", "sandbox", "openai")
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"

# setting name -> environment variables, first set wins
_ENV: dict[str, tuple[str, ...]] = {
    "api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "base_url": ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
    "api_version": ("TWEETGEN_API_VERSION",),
    "model": ("TWEETGEN_MODEL",),
    "provider": ("TWEETGEN_PROVIDER",),
    "log_level": ("TWEETGEN_LOG_LEVEL",),
    "log_file": ("TWEETGEN_LOG_FILE",),
    "timeout": ("TWEETGEN_TIMEOUT",),
    "max_response_bytes": ("TWEETGEN_MAX_RESPONSE_BYTES",),
    "openai_api_key": ("OPENAI_API_KEY",),
    "openai_base_url": ("OPENAI_BASE_URL",),
    "openai_model": ("TWEETGEN_OPENAI_MODEL",),
    "shared": ("TWEETGEN_SHARED",),
    "thinking": ("TWEETGEN_THINKING",),
    "service_tier": ("TWEETGEN_SERVICE_TIER",),
    "flex_fallback": ("TWEETGEN_FLEX_FALLBACK",),
}
#: every variable the settings read (a cache of resolved settings keys on their values)
ENVIRONMENT_VARIABLES = tuple(var for names in _ENV.values() for var in names)


class Secret:
    """A string that prints as ``***``; ``reveal()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value (for the one header that needs it)."""
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; ``repr`` never shows the key."""

    api_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    api_version: str = DEFAULT_API_VERSION
    model: str = DEFAULT_MODEL
    provider: str | None = None
    log_level: str = "INFO"
    log_file: str = DEFAULT_LOG_FILE
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    openai_api_key: Secret | None = None
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    openai_model: str = DEFAULT_OPENAI_MODEL
    #: a postgresql:// URL: limits, breaker and budget shared with every process naming it
    shared: str | None = field(default=None, repr=False)
    #: how much the model may think (off, low, medium, high, auto; None: tweetgen's default, off)
    thinking: str | None = None
    #: the service tier asked for (standard, flex, priority; None: standard)
    service_tier: str | None = None
    #: a shed flex call is asked again at standard
    flex_fallback: bool = True
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def with_overrides(self, **overrides: object) -> Settings:
        """Return a copy with the non-``None`` overrides applied and validated."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for secret in ("api_key", "openai_api_key"):
            if isinstance(given.get(secret), str):
                given[secret] = Secret(str(given[secret]))
        return _validated(replace(self, **given))  # type: ignore[arg-type]


def _read_dotenv(path: Path) -> dict[str, str]:
    """The values of a ``.env`` file, parsed again only when the file changes (every call reads
    settings)."""
    try:
        st = path.stat()
    except OSError:
        return {}
    if not stat.S_ISREG(st.st_mode):
        return {}
    try:
        return dict(_parse_dotenv(str(path.resolve()), st.st_mtime_ns, st.st_size))
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            f"the {path} file is not valid UTF-8 (byte 0x{error.object[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8 or remove it"
        ) from None
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the {path} file: {error.strerror or error}"
        ) from None


@functools.lru_cache(maxsize=8)
def _parse_dotenv(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, str], ...]:
    from dotenv import dotenv_values

    return tuple((k, v) for k, v in dotenv_values(path).items() if v is not None)


def _lookup(name: str, env: Mapping[str, str], dotenv: Mapping[str, str]) -> tuple[str, str] | None:
    for source_name, source in (("environment", env), (".env", dotenv)):
        for var in _ENV[name]:
            value = source.get(var, "").strip()
            if value:
                return value, f"{source_name} {var}"
    return None


def load_settings(
    *,
    env: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
    **explicit: object,
) -> Settings:
    """Resolve settings from explicit arguments, the environment, ``.env`` and defaults."""
    env = os.environ if env is None else env
    dotenv = _read_dotenv(Path(dotenv_path)) if dotenv_path is not None else {}
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for name in _ENV:
        found = _lookup(name, env, dotenv)
        if found is not None:
            values[name], sources[name] = found
    for name, value in explicit.items():
        if value is not None and not (name == "api_key" and value == ""):
            values[name], sources[name] = value, "argument"
    if "timeout" in values:
        values["timeout"] = _parse_timeout(values["timeout"], sources["timeout"])
    if "max_response_bytes" in values:
        values["max_response_bytes"] = _parse_bytes(
            values["max_response_bytes"], sources["max_response_bytes"]
        )
    for secret in ("api_key", "openai_api_key"):
        if isinstance(values.get(secret), str):
            values[secret] = Secret(str(values[secret]))
    if "flex_fallback" in values:
        from .configwords import parse_switch

        values["flex_fallback"] = parse_switch(values["flex_fallback"], sources["flex_fallback"])
    try:
        settings = Settings(**values, sources=sources)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ConfigurationError(f"unknown setting: {exc}") from None
    return _validated(settings)


def _origin(name: str, source: str | None) -> tuple[str, str | None]:
    """Where a value came from, for an error message (`` (from environment TWEETGEN_TIMEOUT)``), and
    the setting to put on the error when it was an argument (the CLI names the argument's flag; the
    message stays neutral)."""
    if source is None:
        return f" (set with {'/'.join(_ENV[name])})", None
    if source == "argument":
        return "", name
    return f" (from {source})", None


def _parse_timeout(value: object, source: str) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        where, setting = _origin("timeout", source)
        raise ConfigurationError(
            f"the timeout{where} must be a number of seconds, got {_shown(str(value))}",
            setting=setting,
        ) from None
    return seconds


def _parse_bytes(value: object, source: str) -> int:
    """A response size limit: a whole number of bytes from 1 KiB to 1 GiB (``8_388_608`` or
    ``8388608``)."""
    try:
        size = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value))
    except ValueError:
        size = -1
    if not 1024 <= size <= 1 << 30:
        where, setting = _origin("max_response_bytes", source)
        raise ConfigurationError(
            f"the largest answer to read{where} must be a whole number of bytes from 1024 (1 KiB) "
            f"to 1073741824 (1 GiB), got {_shown(str(value))}",
            setting=setting,
        )
    return size


def provider_chain(spec: str) -> list[str]:
    """The providers of a spec such as ``gemini`` or ``gemini,openai`` (a chain), in order."""
    return [part.strip() for part in spec.split(",") if part.strip()]


# a model name in a Gemini URL path (gemini-2.5-flash, gemini-flash-latest): no spaces, controls, /
# ? # or %
_GEMINI_MODEL = re.compile(r"[A-Za-z0-9._:@+-]+")
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")  # spaces and control characters


def _source(settings: Settings, name: str) -> str:
    return _origin(name, settings.sources.get(name))[0]


def _setting(settings: Settings, name: str) -> str | None:
    """``name`` when its value was an argument (the error's ``setting``), else ``None``."""
    return _origin(name, settings.sources.get(name))[1]


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a base URL ("" when it is simply not an http(s) URL), or ``None``."""
    if _URL_UNSAFE.search(url):
        return "; it contains a space or a control character"
    try:
        parts = urlsplit(url)
        port, host = parts.port, parts.hostname
    except ValueError as error:  # a bad IPv6 literal or port
        return f"; it cannot be read ({error})"
    if parts.scheme not in ("http", "https") or not host:
        return ""
    if parts.query or parts.fragment or url.rstrip("/").endswith(("?", "#")):
        return "; it has a query (?) or fragment (#), where the API path would end up"
    return None if port != 0 else "; port 0 is not a port"


def _check_url(settings: Settings, name: str, what: str, example: str) -> None:
    url = getattr(settings, name)
    problem = _url_problem(url) if isinstance(url, str) else ""
    if problem is not None:
        got = _shown(str(url)) + problem
        raise ConfigurationError(
            f"the {what}{_source(settings, name)} must be an http(s) URL such as {example}, got "
            f"{got}",
            setting=_setting(settings, name),
        )


def _check_shared(settings: Settings) -> None:
    """The shared state's URL: a ``postgresql://`` URL (shown without its password), or none."""
    url = settings.shared
    if url is None or url == "":
        return
    from .shared import check_url, safe_url

    problem = check_url(url) if isinstance(url, str) else "it is not text"
    if problem is not None:
        raise ConfigurationError(
            f"the shared state{_source(settings, 'shared')} must be a postgresql:// URL such as "
            f"postgresql://user@db.example:5432/tweetgen, got {_shown(safe_url(str(url)))}: "
            f"{problem}",
            setting=_setting(settings, "shared"),
        )


def _validated(settings: Settings) -> Settings:
    _check_url(settings, "base_url", "base URL", DEFAULT_BASE_URL)
    if settings.provider is not None and not set(provider_chain(settings.provider)) <= set(
        PROVIDERS
    ):
        raise ConfigurationError(
            f"unknown provider {_shown(str(settings.provider))}{_source(settings, 'provider')}; "
            f"choose one of {', '.join(PROVIDERS)}, or a fallback chain such as gemini,openai",
            setting=_setting(settings, "provider"),
        )
    if not isinstance(settings.model, str) or not _GEMINI_MODEL.fullmatch(
        settings.model.removeprefix("models/")
    ):
        raise ConfigurationError(
            f"the model{_source(settings, 'model')} must be a model name such as {DEFAULT_MODEL} "
            f"(letters, digits and . _ - : @ +), got {_shown(str(settings.model))}",
            setting=_setting(settings, "model"),
        )
    if not isinstance(settings.openai_model, str) or not _KEY_CHARS.fullmatch(
        settings.openai_model
    ):
        raise ConfigurationError(
            f"the OpenAI-compatible model{_source(settings, 'openai_model')} must be a model name "
            f"such as {DEFAULT_OPENAI_MODEL} (printable characters, no spaces), got "
            f"{_shown(str(settings.openai_model))}",
            setting=_setting(settings, "openai_model"),
        )
    for name, seconds, what in (
        ("timeout", settings.timeout, "the timeout"),
        ("connect_timeout", settings.connect_timeout, "the connect timeout"),
    ):
        if not 0 < seconds <= 3600:  # also false for NaN
            where, setting = _origin(name, settings.sources.get(name, "argument"))
            raise ConfigurationError(
                f"{what}{where} must be more than 0 seconds and at most 3600 (an hour), got "
                f"{seconds:g}",
                setting=setting,
            )
    for name, what in (("api_key", "the Gemini API key"), ("openai_api_key", "the OpenAI API key")):
        secret = getattr(settings, name)
        value = secret.reveal() if secret is not None else ""
        if secret is not None and (
            not _KEY_CHARS.fullmatch(value) or value[:1] in "'\"" or value[-1:] in "'\""
        ):
            raise ConfigurationError(
                f"{what}{_source(settings, name)} contains spaces, quotes or non-ASCII characters; "
                "paste the key alone, without quotes",
                setting=_setting(settings, name),
            )
    _check_url(settings, "openai_base_url", "OpenAI-compatible base URL", DEFAULT_OPENAI_BASE_URL)
    _check_shared(settings)
    from .configwords import check_choices

    check_choices(settings)
    return replace(
        settings,
        base_url=settings.base_url.rstrip("/"),
        openai_base_url=settings.openai_base_url.rstrip("/"),
        model=settings.model.removeprefix("models/"),
    )


#: how to install the ``otel`` extra, in the README's words (the CLI's --otel help and the
#: missing-package error)
OTEL_INSTALL_HINT = "pip install -e '.[otel]' from a checkout, or pip install 'tweetgen[otel]'"

#: what the CLI and the demo say once on stderr when ``auto`` becomes the sandbox for lack of a key
SANDBOX_NOTICE = (
    "tweetgen: no Gemini API key is set, so this uses the offline sandbox: its tweets are "
    "placeholder text, not written by a model. For real tweets set GEMINI_API_KEY in the "
    "environment or in a .env file (cp .env.example .env)."
)
