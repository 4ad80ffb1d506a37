"""Settings that are one of a few words: the thinking level, the service tier, the flex fallback
switch (checked here so that :mod:`tweetgen.config` stays one screenful of resolution rules)."""

from __future__ import annotations

from .config import Settings, _origin, _setting, _shown, _source
from .errors import ConfigurationError
from .thinking import check_level
from .tiers import check_tier

__all__ = ["check_choices", "parse_switch"]


def parse_switch(value: object, source: str) -> bool:
    """A yes/no setting: true, false, 1, 0, yes, no, on or off."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    where, setting = _origin("flex_fallback", source)
    raise ConfigurationError(
        f"the flex fallback switch{where} must be true or false, got {_shown(str(value))}",
        setting=setting,
    )


def check_choices(settings: Settings) -> None:
    """The thinking level and the service tier: one of their words, or unset."""
    for name, check in (("thinking", check_level), ("service_tier", check_tier)):
        problem = check(getattr(settings, name), _source(settings, name))
        if problem:
            raise ConfigurationError(problem, setting=_setting(settings, name))
