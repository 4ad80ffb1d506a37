"""The approved tweets as files: JSON Lines, and CSV laid out for a scheduler's import.

The CSV layouts, and how sure we are of them (researched for issue 16; none of the three vendors'
own import pages was among the sources we could read, so each is UNCONFIRMED and kept to the one
column every import needs, the post's text, plus the columns we believe each tool names):

- ``buffer``: ``Text, Image URL, Tags, Posting Time``, Buffer's bulk-upload template as we
  remember it. UNCONFIRMED: no Buffer help page was found to check it against.
- ``typefully``: ``Text``. UNCONFIRMED: no Typefully CSV import documentation was found
  (Typefully's public surface we found is its drafts API: create_draft/update_draft with the
  draft's text); one column of text is what a generic CSV import maps.
- ``postiz``: ``content, date``. UNCONFIRMED: Postiz had no CSV import when last checked
  (gitroomhq/postiz-app issue #236 "Import Posts via file" was closed without one; #1780 asks
  for an export); a commenter there proposed ``platformName, platformAccount, textContent,
  featuredImageFilename, scheduledPostDate``, which is a proposal, not a format.
- ``generic``: every column we have (id, batch, row, text, lengths, provider, model, cost).

Related tools whose pages we could read agree on the shape (one row a post, a text column, an
optional ISO-8601 time column; e.g. PostFast's ``content``/``scheduled_at``, Ayrshare's
``post``/``scheduleDate``), so a layout can be remapped in any of them by its header. Times are
left empty: the scheduler's queue decides them. Texts are written as they are: a tweet starting
with ``@`` or ``-`` is common and is not prefixed (open the file as text, not in a spreadsheet).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence

from .queries import Item

__all__ = ["CSV_LAYOUTS", "FORMATS", "export"]

CSV_LAYOUTS: dict[str, tuple[str, ...]] = {
    "buffer": ("Text", "Image URL", "Tags", "Posting Time"),
    "typefully": ("Text",),
    "postiz": ("content", "date"),
    "generic": (
        "id", "batch_id", "row_number", "text", "words", "weighted_length", "edited",
        "provider", "model", "cost_usd", "approved_at",
    ),
}  # fmt: skip
#: every format: the CSV layouts and ``jsonl``
FORMATS = ("jsonl", *CSV_LAYOUTS)


def _generic(item: Item) -> dict[str, object]:
    return {
        "id": item.id,
        "batch_id": item.batch_id,
        "row_number": item.row_number,
        "text": item.text,
        "words": item.check.words,
        "weighted_length": item.check.weighted_length,
        "edited": item.edited,
        "provider": item.provider,
        "model": item.model,
        "cost_usd": item.cost_usd,
        "approved_at": item.reviewed_at,
    }


_CELLS: dict[str, Callable[[Item], dict[str, object]]] = {
    "buffer": lambda i: {"Text": i.text},
    "typefully": lambda i: {"Text": i.text},
    "postiz": lambda i: {"content": i.text},
    "generic": _generic,
}


def export(items: Sequence[Item], fmt: str) -> tuple[str, str, str]:
    """The file's text, media type and file name for ``items`` in format ``fmt``
    (:data:`FORMATS`; anything else is ValueError)."""
    if fmt == "jsonl":
        lines = (json.dumps(_generic(i), ensure_ascii=False) + "\n" for i in items)
        return "".join(lines), "application/jsonl; charset=utf-8", "approved-tweets.jsonl"
    if fmt not in CSV_LAYOUTS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt[:20]!r}")
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_LAYOUTS[fmt], restval="", lineterminator="\r\n")
    writer.writeheader()
    for i in items:
        writer.writerow(_CELLS[fmt](i))
    return out.getvalue(), "text/csv; charset=utf-8", f"approved-tweets-{fmt}.csv"
