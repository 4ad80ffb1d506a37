"""What a reviewer does to a call: approve, reject, put back to pending, edit, and the same for many
at once. Every change is one transaction that writes the call's ``reviews`` row and a
``review_events`` row (its time, the state and text before and after).

Refusals are :class:`ReviewError` with the HTTP status the page and the API answer: 404 (no such
tweet), 409 (the call was replaced by a regeneration) and 422 (the text breaks X's rules or the
call's, so it cannot be approved; an empty or too long edit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..store import Store, Tx, utc_iso
from .checks import check_text, clean_edit, rules_of
from .queries import Item, item

__all__ = [
    "ACTIONS",
    "MAX_BULK",
    "BulkResult",
    "ReviewError",
    "bulk",
    "decide",
    "edit",
    "link_regeneration",
]

#: what a decision sets the state to
ACTIONS = {"approve": "approved", "reject": "rejected", "reset": "pending"}
#: the most calls one bulk action takes
MAX_BULK = 1000

_CALL = (
    "SELECT c.id, c.text, c.inputs_json, c.status, COALESCE(v.state, 'pending') AS state, "
    "v.text AS edited FROM calls c LEFT JOIN reviews v ON v.call_id = c.id WHERE c.id = ?"
)
_UPSERT = (
    "INSERT INTO reviews (call_id, state, text, replaces, updated_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (call_id) DO UPDATE SET state = excluded.state, text = excluded.text, "
    "updated_at = excluded.updated_at"
)
_EVENT = (
    "INSERT INTO review_events (call_id, created_at, action, old_state, new_state, old_text, "
    "new_text, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class ReviewError(Exception):
    """A decision or edit that cannot be made; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class _Current:
    generated: str
    text: str
    state: str
    inputs_json: str


def _now() -> str:
    return utc_iso(datetime.now(timezone.utc))


def _current(tx: Tx, call_id: int) -> _Current:
    rows = tx.execute(_CALL, (call_id,))
    if not rows or rows[0]["status"] != "ok" or rows[0]["text"] is None:
        raise ReviewError(f"there is no generated tweet {call_id}", 404)
    row = rows[0]
    if row["state"] == "replaced":
        raise ReviewError(
            f"tweet {call_id} was replaced by a regeneration; review the new one", 409
        )
    generated = row["text"]
    text = generated if row["edited"] is None else row["edited"]
    return _Current(generated, text, row["state"], row["inputs_json"])


def _write(
    tx: Tx,
    call_id: int,
    action: str,
    old: _Current,
    state: str,
    text: str,
    details: dict[str, Any] | None = None,
) -> None:
    at = _now()
    kept = None if text == old.generated else text
    tx.execute(_UPSERT, (call_id, state, kept, None, at))
    tx.execute(
        _EVENT,
        (
            call_id, at, action, old.state, state,
            old.text if text != old.text else None, text if text != old.text else None,
            json.dumps(details or {}, sort_keys=True),
        ),
    )  # fmt: skip


def _approvable(old: _Current, text: str) -> None:
    check = check_text(text, rules_of(old.inputs_json))
    if not check.valid:
        raise ReviewError(
            "this text cannot be approved: " + "; ".join(check.reasons) + " (edit it first)", 422
        )


def _decide(tx: Tx, call_id: int, action: str, text: str | None) -> None:
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action[:20]!r}: use approve, reject or reset", 422)
    old = _current(tx, call_id)
    new_text = old.text if text is None else _cleaned(text)
    if action == "approve":
        _approvable(old, new_text)
    _write(tx, call_id, action, old, ACTIONS[action], new_text)


def _cleaned(text: str) -> str:
    try:
        cleaned = clean_edit(text)
    except ValueError as error:
        raise ReviewError(str(error), 422) from None
    if not cleaned:
        raise ReviewError("the text is empty: write the tweet or reject it", 422)
    return cleaned


def decide(store: Store, call_id: int, action: str, *, text: str | None = None) -> Item:
    """Approve, reject or reset one call (``text``: approve this text, an edit saved with the
    decision); return it as it now is."""
    with store.transaction() as tx:
        _decide(tx, call_id, action, text)
    return _reread(store, call_id)


def edit(store: Store, call_id: int, text: str) -> Item:
    """Keep ``text`` as the call's tweet. An approved call stays approved while the text keeps the
    rules; an edit that breaks them puts it back to pending."""
    with store.transaction() as tx:
        old = _current(tx, call_id)
        new_text = _cleaned(text)
        state = old.state
        if state == "approved" and not check_text(new_text, rules_of(old.inputs_json)).valid:
            state = "pending"
        if new_text != old.text or state != old.state:
            _write(tx, call_id, "edit", old, state, new_text)
    return _reread(store, call_id)


def _reread(store: Store, call_id: int) -> Item:
    found = item(store, call_id)
    if found is None:  # deleted between the write and the read
        raise ReviewError(f"there is no generated tweet {call_id}", 404)
    return found


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: the calls changed and those refused, with why."""

    done: tuple[int, ...]
    refused: tuple[tuple[int, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "done": list(self.done),
            "refused": [{"id": i, "reason": reason} for i, reason in self.refused],
        }


def bulk(store: Store, ids: Iterable[int], action: str) -> BulkResult:
    """``action`` on each call in one transaction; a call that cannot take it (it breaks the rules,
    was replaced, does not exist) is refused and the others go ahead."""
    chosen = list(dict.fromkeys(ids))
    if len(chosen) > MAX_BULK:
        raise ReviewError(f"at most {MAX_BULK} tweets at once, not {len(chosen)}", 422)
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action[:20]!r}: use approve, reject or reset", 422)
    done: list[int] = []
    refused: list[tuple[int, str]] = []
    with store.transaction() as tx:
        for call_id in chosen:
            try:
                _decide(tx, call_id, action, None)
            except ReviewError as refusal:
                refused.append((call_id, refusal.message))
            else:
                done.append(call_id)
    return BulkResult(tuple(done), tuple(refused))


def link_regeneration(store: Store, old_id: int, new_id: int, details: dict[str, Any]) -> None:
    """Record that call ``new_id`` (pending) replaces ``old_id`` (now ``replaced``)."""
    with store.transaction() as tx:
        old = _current(tx, old_id)
        at = _now()
        tx.execute(_UPSERT, (old_id, "replaced", None if old.text == old.generated else old.text,
                             None, at))  # fmt: skip
        tx.execute(
            "INSERT INTO reviews (call_id, state, text, replaces, updated_at) "
            "VALUES (?, 'pending', NULL, ?, ?)",
            (new_id, old_id, at),
        )
        info = json.dumps({**details, "new_call": new_id}, sort_keys=True)
        tx.execute(_EVENT, (old_id, at, "regenerate", old.state, "replaced", None, None, info))
