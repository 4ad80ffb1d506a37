"""The seed's template system (Q2), now :mod:`tweetgen.prompts`."""

import _bootstrap  # noqa: F401  (src/ on the path in a bare checkout)
from tweetgen.prompts import (
    DEFAULT_TEMPLATE,
    TONES,
    PromptTemplate,
    TemplateError,
    TemplateRegistry,
    default_registry,
    register_tone,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "TONES",
    "PromptTemplate",
    "TemplateError",
    "TemplateRegistry",
    "default_registry",
    "register_tone",
]
