"""A batch's rows as a work queue in the store, shared by every worker of the batch: local processes
(``--workers N``) and ``tweetgen batch`` commands on other machines naming one PostgreSQL store.

Each row of ``batch_rows`` is ``pending``, ``running`` (claimed by a worker until ``lease_until``,
by the database's clock) or ``done``. A worker claims rows in chunks, renews the leases it holds
(its heartbeat) and marks rows done once their outcome is in the store. A row whose lease expired
(its worker was killed, or stalled) is claimed again by another worker; ``claims`` counts how many
times a row was claimed in this round (above 1: taken over).

As procrastinate, pgqueuer and DBOS do, a claim on PostgreSQL is one ``UPDATE`` of rows picked with
``FOR UPDATE SKIP LOCKED``: two workers never wait for each other's rows nor take the same one. On
SQLite a claim is one ``BEGIN IMMEDIATE`` transaction: claims are serialised by the file's lock.

A *round* is one pass over the batch: when a command starts and no row is held under a live lease
(no other worker is running), it begins a new round (every row pending again, so that the rules of
a rerun apply to each row: done rows are skipped, failed ones called again only with
``--retry-failed``); otherwise it joins the round in progress. On PostgreSQL a round begins under an
exclusive advisory lock of the batch, and claims take it shared, so a claim never races a reset.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .quotas import FINAL_KINDS
from .storeschema import utc_iso

__all__ = ["BatchQueue", "Claimed", "QueueState"]

#: rows inserted per transaction when a batch is loaded
LOAD_CHUNK = 500
_PENDING = "state = 'pending'"
_EXPIRED = "state = 'running' AND lease_until < ?"
_CLAIM_SQLITE = (
    "UPDATE batch_rows SET state = 'running', worker = ?, lease_until = ?, claims = claims + 1 "
    "WHERE batch_id = ? AND row_number IN (SELECT row_number FROM batch_rows "
    "WHERE batch_id = ? AND {where} ORDER BY row_number LIMIT ?) "
    "RETURNING row_number, payload, claims, idempotency_key"
)
_CLAIM_POSTGRESQL = (
    "WITH picked AS MATERIALIZED (SELECT row_number FROM batch_rows "
    "WHERE batch_id = ? AND {where} ORDER BY row_number LIMIT ? FOR UPDATE SKIP LOCKED) "
    "UPDATE batch_rows AS r SET state = 'running', worker = ?, lease_until = ?, "
    "claims = r.claims + 1 FROM picked WHERE r.batch_id = ? AND r.row_number = picked.row_number "
    "RETURNING r.row_number, r.payload, r.claims, r.idempotency_key"
)
_DONE = (
    "UPDATE batch_rows SET state = 'done', lease_until = NULL "
    "WHERE batch_id = ? AND row_number = ? AND worker = ? AND state = 'running'"
)
_RELEASE = (
    "UPDATE batch_rows SET state = 'pending', worker = NULL, lease_until = NULL "
    "WHERE batch_id = ? AND row_number = ? AND worker = ? AND state = 'running'"
)
_RENEW = (
    "UPDATE batch_rows SET lease_until = ? WHERE batch_id = ? AND worker = ? AND state = 'running'"
)
_EXPIRE = (
    "UPDATE batch_rows SET lease_until = 0 WHERE batch_id = ? AND worker = ? AND state = 'running'"
)
_RESET = (
    "UPDATE batch_rows SET state = 'pending', worker = NULL, lease_until = NULL, claims = 0 "
    "WHERE batch_id = ?"
)
_LIVE = "state = 'running' AND lease_until > ?"
_STATE = (
    "SELECT state, CASE WHEN worker = ? THEN 1 ELSE 0 END AS mine, COUNT(*) AS n, "
    "MIN(lease_until) AS expiry FROM batch_rows WHERE batch_id = ?{where} GROUP BY 1, 2"
)
#: only the rows not done yet: a range of the state index, cheap however long the batch
_UNFINISHED = " AND state IN ('pending', 'running')"
_INSERT_ROW = (
    "INSERT INTO batch_rows (batch_id, row_number, idempotency_key, payload) "
    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_BATCH = (
    "INSERT INTO batches (batch_id, total, created_at, details) VALUES (?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds: its number, its payload, and how often it was claimed this round
    (above 1: taken over from a worker whose lease expired)."""

    number: int
    payload: str
    claims: int
    key: str | None = None


@dataclass(frozen=True)
class QueueState:
    """Where a batch stands: rows pending, running (this worker's and others'), done; the earliest
    lease of another worker's row (``None`` when none runs)."""

    pending: int = 0
    mine: int = 0
    others: int = 0
    done: int = 0
    expiry: float | None = None

    @property
    def complete(self) -> bool:
        """Every row is done."""
        return self.pending == self.mine == self.others == 0


def _lock_key(batch_id: str) -> int:
    """The batch's PostgreSQL advisory lock: 64 bits of a digest of its id, signed."""
    digest = hashlib.sha256(f"tweetgen batch {batch_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class BatchQueue:
    """The rows of one batch in the store, as one worker (``worker``, a unique name) sees them."""

    def __init__(self, store: Any, batch_id: str, *, worker: str, lease: float) -> None:
        self.store, self.batch_id, self.worker, self.lease = store, batch_id, worker, lease
        self.postgresql = store.backend == "postgresql"
        self._key = _lock_key(batch_id)

    def __repr__(self) -> str:
        return f"BatchQueue({self.batch_id!r}, worker={self.worker!r})"

    def _lock(self, tx: Any, *, shared: bool) -> None:
        """Claims (shared) against a new round (exclusive), on PostgreSQL; SQLite's write lock
        already serialises every transaction."""
        if self.postgresql:
            kind = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
            tx.execute(f"SELECT {kind}(?)", (self._key,))

    # --- loading and rounds ---------------------------------------------------------------------

    def loaded(self) -> bool:
        """Whether the batch's rows are all in the store (the ``batches`` row is written last)."""
        found = self.store.query("SELECT total FROM batches WHERE batch_id = ?", (self.batch_id,))
        return bool(found)

    def load(
        self, rows: Iterable[tuple[int, str | None, str]], total: int, details: dict[str, Any]
    ) -> bool:
        """Insert the rows (number, key, payload) unless the batch is loaded already; idempotent,
        in chunks, so several processes loading one batch at once insert each row once. Returns
        whether this process loaded it."""
        if self.loaded():
            return False
        chunk: list[tuple[object, ...]] = []
        for number, key, payload in rows:
            chunk.append((self.batch_id, number, key, payload))
            if len(chunk) >= LOAD_CHUNK:
                self._insert(chunk)
                chunk = []
        if chunk:
            self._insert(chunk)
        created = utc_iso(datetime.datetime.now(datetime.timezone.utc))
        text = json.dumps(details, sort_keys=True, ensure_ascii=False)
        with self.store.transaction() as tx:
            tx.execute(_INSERT_BATCH, (self.batch_id, total, created, text))
        return True

    def _insert(self, chunk: Sequence[Sequence[object]]) -> None:
        with self.store.transaction() as tx:
            tx.executemany(_INSERT_ROW, chunk)

    def begin_round(self, *, fresh: bool = False) -> bool:
        """Begin a new round (every row pending again) unless another worker holds a live lease;
        ``fresh``: begin one anyway (the command holds the SQLite store's run lock: any lease left
        is a dead run's). Returns whether a new round began."""
        with self.store.transaction() as tx:
            self._lock(tx, shared=False)
            if not fresh:
                now = self.store.now()
                live = tx.execute(
                    f"SELECT COUNT(*) AS n FROM batch_rows WHERE batch_id = ? AND {_LIVE}",  # noqa: S608
                    (self.batch_id, now),
                )
                if live and int(live[0]["n"]):
                    return False
            tx.execute(_RESET, (self.batch_id,))
        return True

    # --- claiming -------------------------------------------------------------------------------

    def claim(self, limit: int, done: Sequence[int] = ()) -> list[Claimed]:
        """Mark ``done`` rows done, then claim up to ``limit`` rows: expired leases first (taken
        over), then pending rows in input order; in one transaction."""
        now = self.store.now()
        until = now + self.lease
        claimed: list[Claimed] = []
        with self.store.transaction() as tx:
            self._lock(tx, shared=True)
            self._done(tx, done)
            for where, extra in ((_EXPIRED, (now,)), (_PENDING, ())):
                left = limit - len(claimed)
                if left <= 0:
                    break
                if self.postgresql:
                    sql = _CLAIM_POSTGRESQL.format(where=where)
                    params: tuple[object, ...] = (
                        self.batch_id, *extra, left, self.worker, until, self.batch_id,
                    )  # fmt: skip
                else:
                    sql = _CLAIM_SQLITE.format(where=where)
                    params = (self.worker, until, self.batch_id, self.batch_id, *extra, left)
                rows = tx.execute(sql, params)
                claimed.extend(Claimed(int(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows)
        return sorted(claimed, key=lambda c: c.number)

    def _done(self, tx: Any, numbers: Sequence[int]) -> None:
        if numbers:
            tx.executemany(_DONE, [(self.batch_id, n, self.worker) for n in numbers])

    def finish(self, numbers: Sequence[int]) -> None:
        """Mark rows done (their outcome is in the store)."""
        if numbers:
            with self.store.transaction() as tx:
                self._done(tx, numbers)

    def release(self, numbers: Sequence[int]) -> None:
        """Give rows this worker holds but will not finish back to the queue (pending)."""
        if numbers:
            with self.store.transaction() as tx:
                tx.executemany(_RELEASE, [(self.batch_id, n, self.worker) for n in numbers])

    def renew(self) -> None:
        """The heartbeat: extend the lease of every row this worker holds."""
        until = self.store.now() + self.lease
        with self.store.transaction() as tx:
            tx.execute(_RENEW, (until, self.batch_id, self.worker))

    def expire(self, worker: str) -> None:
        """End at once the leases of a worker known to be dead (a local child that exited), so
        that its rows are taken over without waiting for them to expire."""
        with self.store.transaction() as tx:
            tx.execute(_EXPIRE, (self.batch_id, worker))

    def known(self, keys: Sequence[str]) -> dict[str, tuple[bool, str | None]]:
        """What the store's calls say of these keys, in one query: per key with a call, whether
        one succeeded and the error type of the latest (a row stopped by a quota no wait clears
        reads as one that waited for an open circuit: it always runs again)."""
        found: dict[str, tuple[bool, str | None]] = {}
        if not keys:
            return found
        marks = ", ".join("?" * len(keys))
        sql = (
            "SELECT idempotency_key, status, error_type, quota_kind FROM calls "  # noqa: S608
            f"WHERE idempotency_key IN ({marks}) ORDER BY id"
        )
        for key, status, error_type, quota_kind in self.store.query(sql, list(keys)):
            done = found.get(key, (False, None))[0] or status == "ok"
            # a spent daily quota, spend cap or credits: runs again, as after an open circuit
            found[key] = (done, "CircuitOpenError" if quota_kind in FINAL_KINDS else error_type)
        return found

    def state(self, *, done: bool = True) -> QueueState:
        """How many rows are pending, running (this worker's, others') and, with ``done``, done
        (that count reads every row of the batch; without it ``done`` is 0)."""
        counts = {"pending": 0, "mine": 0, "others": 0, "done": 0}
        expiry: float | None = None
        sql = _STATE.format(where="" if done else _UNFINISHED)
        for row in self.store.query(sql, (self.worker, self.batch_id)):
            state, mine, n = str(row[0]), int(row[1]), int(row[2])
            if state == "running":
                counts["mine" if mine else "others"] += n
                if not mine and row[3] is not None:
                    expiry = float(row[3]) if expiry is None else min(expiry, float(row[3]))
            else:
                counts[state] += n
        return QueueState(**counts, expiry=expiry)
