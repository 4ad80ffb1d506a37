"""The batch work queue in the store (issue 14, item 2), on SQLite and PostgreSQL: loading once,
claims in input order without overlap, leases taken over when they expire, rounds, and the
payloads that carry a prepared row between processes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tweetgen.batchinput import Row
from tweetgen.batchqueue import BatchQueue
from tweetgen.batchrows import RowLedger, from_payload, payload, prepare
from tweetgen.store import Store

SETTINGS = {"provider": "sandbox", "model": "m"}


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "t.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(target: str) -> Iterator[Store]:
    with Store(target) as opened:
        yield opened


def _rows(count: int) -> list[tuple[int, str | None, str]]:
    rows = [prepare(Row(n, {"topic": f"topic {n}"}), SETTINGS) for n in range(1, count + 1)]
    return [(p.row.number, p.key, payload(p)) for p in rows]


def _queue(store: Store, worker: str, lease: float = 30.0) -> BatchQueue:
    return BatchQueue(store, "b1", worker=worker, lease=lease)


def test_a_batch_loads_once_and_claims_go_in_input_order_without_overlap(store: Store) -> None:
    a, b = _queue(store, "a"), _queue(store, "b")
    assert a.load(_rows(10), 10, {"rows": 10}) is True
    assert b.load(_rows(10), 10, {"rows": 10}) is False  # loaded already: nothing inserted
    assert store.query("SELECT COUNT(*) FROM batch_rows")[0][0] == 10
    first, second = a.claim(4), b.claim(4)
    assert [c.number for c in first] == [1, 2, 3, 4]
    assert [c.number for c in second] == [5, 6, 7, 8]
    assert {c.claims for c in first + second} == {1}
    a.claim(0, done=[1, 2])
    state = a.state()
    assert (state.pending, state.mine, state.others, state.done) == (2, 2, 4, 2)
    assert not state.complete


def test_an_expired_lease_is_taken_over_and_counted(store: Store) -> None:
    dead, alive = _queue(store, "dead", lease=-1.0), _queue(store, "alive")
    dead.load(_rows(3), 3, {})
    assert [c.number for c in dead.claim(2)] == [1, 2]  # a lease already expired
    taken = alive.claim(5)
    assert [(c.number, c.claims) for c in taken] == [(1, 2), (2, 2), (3, 1)]
    dead.claim(0, done=[1])  # too late: the row is no longer the dead worker's
    alive.finish([1, 2, 3])
    assert alive.state().complete


def test_a_dead_workers_leases_end_at_once_when_expired(store: Store) -> None:
    child, parent = _queue(store, "child"), _queue(store, "parent")
    child.load(_rows(2), 2, {})
    child.claim(2)
    assert parent.claim(2) == []
    parent.expire("child")
    assert [c.number for c in parent.claim(2)] == [1, 2]


def test_renew_keeps_a_lease_and_release_gives_rows_back(store: Store) -> None:
    worker, other = _queue(store, "w", lease=-1.0), _queue(store, "o")
    worker.load(_rows(3), 3, {})
    worker.claim(3)
    worker.lease = 30.0
    worker.renew()  # the heartbeat: the leases are live again
    assert other.claim(3) == []
    worker.release([2, 3])
    assert [c.number for c in other.claim(3)] == [2, 3]


def test_a_round_begins_only_when_no_lease_is_live(store: Store) -> None:
    a, b = _queue(store, "a"), _queue(store, "b")
    a.load(_rows(3), 3, {})
    a.claim(3, done=[])
    a.finish([1])
    assert b.begin_round() is False  # a holds live leases: b joins the round
    assert b.state().done == 1
    a.finish([2, 3])
    assert b.begin_round() is True  # nobody runs: a new round, every row pending again
    state = b.state()
    assert (state.pending, state.done) == (3, 0)
    a.claim(1)
    assert b.begin_round(fresh=True) is True  # the SQLite run lock says a is dead
    assert b.state().pending == 3


def test_concurrent_claims_never_share_a_row(store: Store, target: str) -> None:
    setup = _queue(store, "setup")
    setup.load(_rows(200), 200, {})
    got: dict[str, list[int]] = {}

    def work(name: str) -> None:
        own = Store(target)  # a connection of its own, as another process has
        queue = BatchQueue(own, "b1", worker=name, lease=30.0)
        mine: list[int] = []
        try:
            while claimed := queue.claim(7, done=mine[-7:]):
                mine.extend(c.number for c in claimed)
        finally:
            own.close()
        got[name] = mine

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    numbers = [n for mine in got.values() for n in mine]
    assert sorted(numbers) == list(range(1, 201))


def test_a_payload_carries_a_row_between_processes_as_json() -> None:
    row = Row(3, {"topic": "Rust", "tone": "witty", "max_words": "12", "id": "r3", "emoji": "yes"})
    prepared = prepare(row, SETTINGS, {"template": "tweet"})
    text = payload(prepared)
    assert json.loads(text)["options"]["topic"] == "Rust"  # JSON, never a pickle
    again = from_payload(3, text)
    assert (again.key, again.request, again.row.id) == (prepared.key, prepared.request, "r3")
    bad = prepare(Row(4, {"topic": "", "id": "x"}), SETTINGS)
    back = from_payload(4, payload(bad))
    assert (back.error, back.row.values["id"], back.request) == ("topic is empty", "x", None)


def test_the_batch_id_is_the_rows_content_not_the_paths() -> None:
    def batch_id(rows: list[Row], settings: dict[str, str]) -> str:
        with RowLedger() as ledger:
            ledger.keep(prepare(row, settings) for row in rows)
            return ledger.batch_id

    rows = [Row(1, {"topic": "a"}), Row(2, {"topic": "b"})]
    assert batch_id(rows, SETTINGS) == batch_id(list(rows), dict(SETTINGS))
    assert batch_id(rows, SETTINGS) != batch_id(rows, {**SETTINGS, "model": "other"})
    assert batch_id(rows, SETTINGS) != batch_id(rows[:1], SETTINGS)


def test_known_says_what_the_store_holds_of_keys_in_one_query(store: Store) -> None:
    queue = _queue(store, "w")
    assert queue.known([]) == {}
    assert queue.known(["nothing-stored"]) == {}


def test_a_row_stored_by_a_killed_worker_is_taken_over_and_only_marked_done(tmp_path: Path) -> None:
    """The gap between Store.write and the mark: whoever takes the row over finds its call."""
    import asyncio

    from tweetgen import TweetGenerator
    from tweetgen.batchfleet import FleetRunner, run_fleet
    from tweetgen.config import load_settings
    from tweetgen.providers.gemini import GeminiProvider
    from tweetgen.sandbox import SandboxServer
    from tweetgen.throttle import BatchStop
    from tweetgen.trace import CallContext

    rows = _rows(2)
    with Store(tmp_path / "t.db") as opened, SandboxServer() as server:
        dead = _queue(opened, "dead", lease=-1.0)
        dead.load(rows, 2, {})
        dead.claim(1)  # row 1: claimed, then its worker "dies" after storing its call
        provider = GeminiProvider(
            api_key="k", model="m", base_url=server.url, name="sandbox", secret_key=False
        )
        stop = BatchStop()
        generator = TweetGenerator(
            provider=provider,
            settings=load_settings(env={}, dotenv_path=None),
            observers=[opened.observer(required=True)],
            async_sleep=stop.wait,
        )
        first = from_payload(1, rows[0][2])

        async def go() -> object:
            try:
                context = CallContext(first.key, "b1", 1)
                await generator.agenerate_request(first.request, context=context)
                runner = FleetRunner(
                    generator,
                    opened,
                    stop,
                    _queue(opened, "alive"),
                    concurrency=2,
                    retry_failed=False,
                    on_progress=lambda summary: None,
                )
                return await run_fleet(runner)
            finally:
                await generator.aclose()

        summary = asyncio.run(go())
        assert len(server.requests) == 2  # the dead worker's call, and row 2's: row 1 not again
        assert _queue(opened, "alive").state().complete
    assert (summary.ok, summary.skipped, summary.takeovers) == (1, 1, 1)  # type: ignore[attr-defined]
