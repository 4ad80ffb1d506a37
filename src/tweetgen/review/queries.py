"""What the review page reads from the store: the generated tweets page by page, one call with its
attempts and decisions, the counts by state and the approved tweets to export.

The list holds the calls that succeeded (``status = 'ok'``) and were not replaced by a
regeneration, grouped by batch: a batch's calls together in row order, a call made outside a batch
in a group of its own. Groups are ordered newest first by their first call's id (a regeneration,
stored later in the same batch and row, keeps its batch's place). Pages are keyset-paginated on
``(group, row, id)``, so page 200 costs what page 1 costs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store import Row, Store
from ..tweets import TweetRules
from .checks import TextCheck, check_text, rules_of

__all__ = [
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "STATES",
    "AttemptView",
    "Cursor",
    "Item",
    "Page",
    "approved",
    "counts",
    "events",
    "item",
    "page",
]

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: the states a listed call can be in (``replaced`` calls are not listed)
STATES = ("pending", "approved", "rejected")
_TOP = 2**62  # above every id: the first page's cursor

_COLUMNS = """c.id, c.batch_id, c.row_number, c.created_at, c.provider, c.model, c.topic,
       c.tone, c.inputs_json, c.text, c.attempts, c.regenerations, c.latency_ms, c.input_tokens,
       c.output_tokens, c.thought_tokens, c.service_tier, c.cost_usd,
       COALESCE(c.row_number, 0) AS rn, COALESCE(v.state, 'pending') AS state,
       v.text AS edited, v.replaces AS replaces, v.updated_at AS reviewed_at"""
_LISTED = (
    "c.status = 'ok' AND (v.state IS NULL OR v.state <> 'replaced') "
    "AND (? = '' OR COALESCE(v.state, 'pending') = ?)"
)
#: a batch's group key: its first call's id (failed and replaced calls count: it never moves)
_GROUPS_SQL = (
    "SELECT batch_id, MIN(id) AS first_id FROM calls WHERE batch_id IS NOT NULL GROUP BY batch_id"
)
# constant text below; every value is a parameter
_FROM = " FROM calls c LEFT JOIN reviews v ON v.call_id = c.id WHERE "
_BATCH_SQL = (
    "SELECT "
    + _COLUMNS
    + ", CAST(? AS BIGINT) AS grp"
    + _FROM
    + "c.batch_id = ? AND "
    + _LISTED
    + " AND (COALESCE(c.row_number, 0) > ? OR (COALESCE(c.row_number, 0) = ? AND c.id > ?)) "
    "ORDER BY COALESCE(c.row_number, 0), c.id LIMIT ?"
)
_SINGLES_SQL = (
    "SELECT "
    + _COLUMNS
    + ", c.id AS grp"
    + _FROM
    + "c.batch_id IS NULL AND c.id < ? AND "
    + _LISTED
    + " ORDER BY c.id DESC LIMIT ?"
)
_ONE_SQL = (
    "SELECT " + _COLUMNS + ", COALESCE((SELECT MIN(f.id) FROM calls f "  # noqa: S608
    "WHERE f.batch_id = c.batch_id), c.id) AS grp" + _FROM + "c.id = ?"
)
_COUNTS_SQL = (
    "SELECT COALESCE(v.state, 'pending') AS state, COUNT(*) AS n FROM calls c "
    "LEFT JOIN reviews v ON v.call_id = c.id WHERE c.status = 'ok' "
    "GROUP BY COALESCE(v.state, 'pending')"
)
_ATTEMPTS_SQL = (
    "SELECT call_id, seq, number, started_at, delay_before, latency_ms, status_code, error_type, "
    "error_message, service_tier, quota_kind FROM attempts WHERE call_id IN ({}) "
    "ORDER BY call_id, seq"
)
_EVENTS_SQL = (
    "SELECT id, call_id, created_at, action, old_state, new_state, old_text, new_text, details "
    "FROM review_events WHERE call_id = ? ORDER BY id DESC LIMIT ?"
)


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after this group, row and id."""

    group: int = _TOP
    row: int = 0
    id: int = 0

    def __str__(self) -> str:
        return f"{self.group}.{self.row}.{self.id}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """A cursor from its text (``group.row.id``); empty text is the first page; anything else
        is ValueError."""
        if not text:
            return cls()
        parts = text.split(".")
        if len(parts) != 3 or not all(p.isdigit() and len(p) <= 19 for p in parts):
            raise ValueError(f"not a page cursor: {text[:40]!r}")
        group, row, last = (int(p) for p in parts)
        return cls(group, row, last)


@dataclass(frozen=True)
class AttemptView:
    """One attempt of a call, as its retry history shows it."""

    seq: int
    number: int
    started_at: str | None
    delay_before: float
    latency_ms: float | None
    status_code: int | None
    error_type: str | None
    error_message: str | None
    service_tier: str | None = None
    quota_kind: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dict(vars(self))


@dataclass(frozen=True)
class Item:
    """One generated tweet under review."""

    id: int
    batch_id: str | None
    row_number: int | None
    group: int
    created_at: str
    provider: str
    model: str
    topic: str | None
    generated: str
    text: str
    state: str
    reviewed_at: str | None
    replaces: int | None
    rules: TweetRules
    check: TextCheck
    attempts: int
    regenerations: int
    latency_ms: float | None
    input_tokens: int
    output_tokens: int
    thought_tokens: int
    service_tier: str | None
    cost_usd: float | None
    history: tuple[AttemptView, ...] = field(default=())

    @property
    def edited(self) -> bool:
        """Whether the text under review is not the generated one."""
        return self.text != self.generated

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``cost_usd`` null: unknown)."""
        figures = {
            name: getattr(self, name)
            for name in (
                "id", "batch_id", "row_number", "created_at", "provider", "model", "topic",
                "text", "generated", "edited", "state", "reviewed_at", "replaces", "attempts",
                "regenerations", "latency_ms", "input_tokens", "output_tokens", "thought_tokens",
                "service_tier", "cost_usd",
            )
        }  # fmt: skip
        return {
            **figures,
            "check": self.check.to_dict(),
            "retries": [a.to_dict() for a in self.history],
        }


@dataclass(frozen=True)
class Page:
    """A page of the list and the cursor of the next one (None: this is the last)."""

    items: tuple[Item, ...]
    next: Cursor | None
    state: str = ""


def _item(row: Row, history: Sequence[AttemptView] = ()) -> Item:
    generated = row["text"] or ""
    text = generated if row["edited"] is None else row["edited"]
    rules = rules_of(row["inputs_json"])
    return Item(
        id=int(row["id"]),
        batch_id=row["batch_id"],
        row_number=row["row_number"],
        group=int(row["grp"]),
        created_at=row["created_at"],
        provider=row["provider"],
        model=row["model"],
        topic=row["topic"],
        generated=generated,
        text=text,
        state=row["state"],
        reviewed_at=row["reviewed_at"],
        replaces=row["replaces"],
        rules=rules,
        check=check_text(text, rules),
        attempts=int(row["attempts"]),
        regenerations=int(row["regenerations"]),
        latency_ms=row["latency_ms"],
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        thought_tokens=int(row["thought_tokens"] or 0),
        service_tier=row["service_tier"],
        cost_usd=row["cost_usd"],
        history=tuple(history),
    )


def _histories(store: Store, ids: Sequence[int]) -> dict[int, list[AttemptView]]:
    found: dict[int, list[AttemptView]] = {i: [] for i in ids}
    if not ids:
        return found
    sql = _ATTEMPTS_SQL.format(", ".join("?" for _ in ids))
    for r in store.query(sql, list(ids)):
        found[int(r["call_id"])].append(
            AttemptView(
                int(r["seq"]), int(r["number"]), r["started_at"], float(r["delay_before"]),
                r["latency_ms"], r["status_code"], r["error_type"], r["error_message"],
                r["service_tier"], r["quota_kind"],
            )
        )  # fmt: skip
    return found


def page(
    store: Store, after: Cursor | None = None, *, size: int = PAGE_SIZE, state: str = ""
) -> Page:
    """The listed calls after ``after`` (the first page without it), at most ``size`` of them
    (1 to :data:`MAX_PAGE_SIZE`), of one state or all (``""``)."""
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"a page holds 1 to {MAX_PAGE_SIZE} tweets, not {size}")
    if state and state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state[:20]!r}")
    at = after or Cursor()
    rows = _rows(store, at, size + 1, state)
    more = len(rows) > size
    rows = rows[:size]
    histories = _histories(store, [int(r["id"]) for r in rows])
    items = tuple(_item(r, histories[int(r["id"])]) for r in rows)
    last = items[-1] if items else None
    cursor = Cursor(last.group, last.row_number or 0, last.id) if more and last else None
    return Page(items, cursor, state)


def _rows(store: Store, at: Cursor, need: int, state: str) -> list[Row]:
    """Up to ``need`` listed rows after ``at``: the rest of the cursor's batch, then the groups
    below it, newest first, each batch's rows read through its index (no scan of the whole list).
    """
    firsts = sorted(
        ((int(r["first_id"]), str(r["batch_id"])) for r in store.query(_GROUPS_SQL)), reverse=True
    )
    batch_of = dict(firsts)
    found: list[Row] = []

    def batch(first: int, row: int, last: int) -> None:
        params = (first, batch_of[first], state, state, row, row, last, need - len(found))
        found.extend(store.query(_BATCH_SQL, params))

    if at.group in batch_of:
        batch(at.group, at.row, at.id)
    singles = list(store.query(_SINGLES_SQL, (at.group, state, state, need)))
    for first, _ in firsts:
        if first >= at.group:
            continue
        while singles and int(singles[0]["id"]) > first and len(found) < need:
            found.append(singles.pop(0))
        if len(found) >= need:
            break
        batch(first, -1, -1)
        if len(found) >= need:
            break
    found.extend(singles[: need - len(found)])
    return found


def item(store: Store, call_id: int) -> Item | None:
    """One call as the review shows it (whatever its state), or None when there is no such call
    or it failed."""
    rows = store.query(_ONE_SQL, (call_id,))  # whatever its state
    if not rows or rows[0]["text"] is None:
        return None
    return _item(rows[0], _histories(store, [call_id])[call_id])


def counts(store: Store) -> dict[str, int]:
    """How many listed calls are in each state."""
    found = dict.fromkeys(STATES, 0)
    for r in store.query(_COUNTS_SQL):
        if r["state"] in found:
            found[r["state"]] = int(r["n"])
    return found


def events(store: Store, call_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """A call's latest decisions and edits, newest first."""
    return [
        {
            "at": r["created_at"],
            "action": r["action"],
            "old_state": r["old_state"],
            "new_state": r["new_state"],
            "old_text": r["old_text"],
            "new_text": r["new_text"],
            "details": json.loads(r["details"] or "{}"),
        }
        for r in store.query(_EVENTS_SQL, (call_id, limit))
    ]


def approved(store: Store, *, chunk: int = MAX_PAGE_SIZE) -> list[Item]:
    """Every approved tweet, in the list's order (read a page at a time)."""
    found: list[Item] = []
    cursor: Cursor | None = Cursor()
    while cursor is not None:
        current = page(store, cursor, size=chunk, state="approved")
        found.extend(current.items)
        cursor = current.next
    return found
