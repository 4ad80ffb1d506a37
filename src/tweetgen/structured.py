"""Structured output: a variant set or a thread asked for as one JSON array of strings.

On Gemini the request carries ``responseMimeType: application/json`` and a ``responseJsonSchema``
(an array of strings, ``minItems`` = ``maxItems`` = the count); on an OpenAI-compatible server that
accepts it (``OpenAIProvider(structured_output=True)``), ``response_format`` ``json_schema``. The
prompt says it too, so a server that ignores the schema still knows the shape.

An answer that is not such an array (invalid JSON, cut by ``MAX_TOKENS`` mid-array, other items) is
a rejected answer, regenerated with the reason fed back, never an empty result. A plain-text
answer (no ``[`` at all: a server that ignored the schema) is read as before: a thread split on its
``---`` lines, a variant as one candidate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import clip

__all__ = ["instruction", "parse_items", "supports_json"]


def supports_json(providers: Sequence[object]) -> bool:
    """Whether every provider of a chain takes a JSON schema (a throttled one: its inner one's)."""
    for provider in providers:
        inner = getattr(provider, "inner", provider)
        if not getattr(provider, "structured_output", getattr(inner, "structured_output", False)):
            return False
    return bool(providers)


def instruction(items: int, thread: bool) -> str:
    """The prompt's sentence asking for the array."""
    what = "the thread's tweets, in order" if thread else f"{items} different tweets"
    return (
        f"\nAnswer with a JSON array of exactly {items} strings: {what}, one tweet per string"
        + (" (no --- lines, no numbers)." if thread else ".")
    )


def parse_items(text: str, items: int) -> tuple[list[str], str | None]:
    """The strings of a JSON-array answer, and why it was rejected (``None``: it was not)."""
    if "[" not in text and not text.lstrip().startswith("{"):
        return [text], None  # plain text from a server that ignored the schema: read as before
    try:
        data = json.loads(text)
    except ValueError as error:
        why = "it was cut off" if "Unterminated" in str(error) or "Expecting" in str(error) else ""
        return [], (
            f"the answer was not a JSON array of {items} strings ({why or 'invalid JSON'}: "
            f"{clip(text, 40)!r})"
        )
    if isinstance(data, dict) and isinstance(data.get("tweets"), list):  # OpenAI's object root
        data = data["tweets"]
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        return [], f"the answer was JSON but not an array of {items} strings"
    texts = [item for item in data if item.strip()]
    if not texts:
        return [], f"the answer was an empty JSON array; it needs {items} strings"
    return texts, None
